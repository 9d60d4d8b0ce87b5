package goclient

import (
	"context"
	"net/http"
)

// BearerAuth adds the admin password as a bearer token to every request.
func BearerAuth(password string) RequestEditorFn {
	return func(_ context.Context, req *http.Request) error {
		req.Header.Set("Authorization", "Bearer "+password)
		return nil
	}
}
