package api

import (
	"cmp"
	"html/template"
	"net/http"
	"slices"
	"strings"

	"github.com/danielgtaylor/huma/v2"
)

// The API reference at /docs, rendered here from the OpenAPI document with no script and no
// asset from elsewhere: Huma's built-in page loads Stoplight Elements from a CDN and is blank
// on a machine without internet. The full document stays at /openapi.json.

type docsOperation struct {
	Method, Path, ID, Summary, Description string
	Secured                                bool
	Params                                 []*huma.Param
	Request                                string
	Responses                              []docsResponse
}

type docsResponse struct{ Status, Description, Schema string }

var docsPage = template.Must(template.New("docs").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} API</title>
<style>body{font:15px/1.45 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
code,.path{font-family:ui-monospace,monospace}.op{border-top:1px solid #ddd;padding:.6rem 0}
.m{display:inline-block;min-width:4.2rem;font-weight:700}.lock{color:#a40}table{border-collapse:collapse}
td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left;vertical-align:top}</style></head><body>
<h1>{{.Title}} {{.Version}}</h1><p>{{.Description}}</p>
<p>The machine-readable document: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1),
<a href="/openapi-3.0.json">/openapi-3.0.json</a>. Operations marked <span class="lock">admin</span>
need <code>Authorization: Bearer RELAY_ADMIN_PASSWORD</code>.</p>
{{range .Operations}}<div class="op" id="{{.ID}}"><h3><span class="m">{{.Method}}</span> <span class="path">{{.Path}}</span>
{{if .Secured}}<span class="lock">admin</span>{{end}}</h3><p><b>{{.Summary}}</b> <code>{{.ID}}</code></p>
{{if .Description}}<p>{{.Description}}</p>{{end}}
{{if .Params}}<table><tr><th>parameter</th><th>in</th><th>description</th></tr>
{{range .Params}}<tr><td><code>{{.Name}}</code>{{if .Required}} (required){{end}}</td><td>{{.In}}</td><td>{{.Description}}</td></tr>{{end}}</table>{{end}}
{{if .Request}}<p>Request body: <code>{{.Request}}</code></p>{{end}}
<ul>{{range .Responses}}<li>{{.Status}}: {{.Description}}{{if .Schema}} <code>{{.Schema}}</code>{{end}}</li>{{end}}</ul></div>
{{end}}</body></html>`))

// docs serves the reference page for the API's document.
func docs(oapi *huma.OpenAPI) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		var ops []docsOperation
		for path, item := range oapi.Paths {
			for method, op := range map[string]*huma.Operation{
				"GET": item.Get, "POST": item.Post, "PUT": item.Put, "DELETE": item.Delete, "PATCH": item.Patch,
			} {
				if op == nil {
					continue
				}
				ops = append(ops, docsOperation{
					Method: method, Path: path, ID: op.OperationID, Summary: op.Summary,
					Description: op.Description, Secured: len(op.Security) > 0, Params: op.Parameters,
					Request: requestSchema(op), Responses: responses(op),
				})
			}
		}
		slices.SortFunc(ops, func(a, b docsOperation) int {
			return cmp.Or(strings.Compare(a.Path, b.Path), strings.Compare(a.Method, b.Method))
		})
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = docsPage.Execute(w, map[string]any{
			"Title": oapi.Info.Title, "Version": oapi.Info.Version, "Description": oapi.Info.Description, "Operations": ops,
		})
	}
}

func requestSchema(op *huma.Operation) string {
	if op.RequestBody == nil {
		return ""
	}
	for _, mt := range op.RequestBody.Content {
		if mt.Schema != nil {
			return schemaName(mt.Schema)
		}
	}
	return ""
}

func responses(op *huma.Operation) []docsResponse {
	var out []docsResponse
	for status, r := range op.Responses {
		dr := docsResponse{Status: status, Description: r.Description}
		for _, mt := range r.Content {
			if mt.Schema != nil {
				dr.Schema = schemaName(mt.Schema)
			}
		}
		out = append(out, dr)
	}
	slices.SortFunc(out, func(a, b docsResponse) int { return strings.Compare(a.Status, b.Status) })
	return out
}

func schemaName(s *huma.Schema) string {
	if s.Ref != "" {
		return strings.TrimPrefix(s.Ref, "#/components/schemas/")
	}
	return s.Type
}
