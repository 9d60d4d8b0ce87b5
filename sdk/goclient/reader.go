package goclient

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/http"
)

// ResponseError is a non-2xx answer from colindex, with the error body's name and message when
// it had one (XRPC's {error, message} on /xrpc/ routes).
type ResponseError struct {
	StatusCode int
	Name       string // e.g. InvalidRequest
	Message    string
}

func (e *ResponseError) Error() string {
	if e.Name == "" {
		return fmt.Sprintf("colindex answered %d", e.StatusCode)
	}
	return fmt.Sprintf("colindex answered %d %s: %s", e.StatusCode, e.Name, e.Message)
}

// ErrCursorRepeated is returned when a page's cursor is the one it was asked with: following
// it would ask for the same page forever.
var ErrCursorRepeated = errors.New("listReposByCollection returned the cursor it was asked with")

// ReposByCollection reads com.atproto.sync.listReposByCollection from its first page to its
// last and yields each DID, in DID order. Several collections are read as their union (each
// DID once, at most 20 collections, as the server allows). pageSize is the DIDs asked per
// request (0 for the server's default, 500; it clamps to 1..10000).
//
// The sequence ends after the last page, or after yielding one non-nil error (a transport
// failure, a *ResponseError, ErrCursorRepeated); breaking out of the loop stops paging.
//
//	for did, err := range c.ReposByCollection(ctx, 1000, "app.bsky.feed.post") {
//		if err != nil {
//			return err
//		}
//		fmt.Println(did)
//	}
//
// A reader that needs each page's Colindex-Backfill header calls
// ListReposByCollectionWithResponse itself (Headers200).
func (c *ClientWithResponses) ReposByCollection(ctx context.Context, pageSize int, collections ...string) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		params := ListReposByCollectionParams{Collection: collections}
		if pageSize > 0 {
			limit := int64(pageSize)
			params.Limit = &limit
		}
		for {
			res, err := c.ListReposByCollectionWithResponse(ctx, &params)
			if err != nil {
				yield("", fmt.Errorf("listReposByCollection: %w", err))
				return
			}
			if res.StatusCode() != http.StatusOK || res.JSON200 == nil {
				rerr := &ResponseError{StatusCode: res.StatusCode()}
				for _, body := range []*XRPCError{res.JSON400, res.JSON500} {
					if body != nil {
						rerr.Name, rerr.Message = body.Error, body.Message
					}
				}
				yield("", rerr)
				return
			}
			for _, repo := range res.JSON200.Repos {
				if !yield(repo.DID, nil) {
					return
				}
			}
			next := res.JSON200.Cursor
			if next == nil || *next == "" {
				return
			}
			if params.Cursor != nil && *params.Cursor == *next {
				yield("", ErrCursorRepeated)
				return
			}
			params.Cursor = next
		}
	}
}
