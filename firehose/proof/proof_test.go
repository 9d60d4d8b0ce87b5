package proof

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/repo/mst"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"
)

// Collections whose names share prefixes: "app.bsky.feed.post.draft/…" sorts just before
// "app.bsky.feed.post/…" ('.' < '/') and "app.bsky.feed.postgate/…" just after, so a check on
// the bare NSID prefix instead of "nsid/" would take either for a post.
const (
	post      = "app.bsky.feed.post"
	postDraft = "app.bsky.feed.post.draft"
	postgate  = "app.bsky.feed.postgate"
	like      = "app.bsky.feed.like"
	likes     = "app.bsky.feed.likes"
	follow    = "app.bsky.graph.follow"
	profile   = "app.bsky.actor.profile"
)

type decideCase struct {
	name  string
	build func(t *testing.T) *comatproto.SyncSubscribeRepos_Commit
	want  map[string]Outcome
	// reasons are those accepted for every Unknown verdict of the case.
	reasons []Reason
}

func TestDecide(t *testing.T) {
	t.Parallel()

	// deleteOne builds a repo of counts and deletes the i-th path of coll (negative: from the end).
	deleteOne := func(counts map[string]int, coll string, i int) func(t *testing.T) *comatproto.SyncSubscribeRepos_Commit {
		return func(t *testing.T) *comatproto.SyncSubscribeRepos_Commit {
			r := newTestRepo(t, counts)
			paths := r.in(coll)
			if i < 0 {
				i += len(paths)
			}
			return r.commit(del(paths[i]))
		}
	}
	// tampered builds a valid one-delete commit and then breaks it with f.
	tampered := func(f func(evt *comatproto.SyncSubscribeRepos_Commit, r *testRepo)) func(t *testing.T) *comatproto.SyncSubscribeRepos_Commit {
		return func(t *testing.T) *comatproto.SyncSubscribeRepos_Commit {
			r := newTestRepo(t, map[string]int{post: 1, like: 3})
			evt := r.commit(del(r.in(post)[0]))
			f(evt, r)
			return evt
		}
	}

	cases := []decideCase{
		{name: "last record of a collection", build: deleteOne(map[string]int{post: 1, like: 3, follow: 2}, post, 0), want: map[string]Outcome{post: Gone}},
		{name: "only record of the repo", build: deleteOne(map[string]int{post: 1}, post, 0), want: map[string]Outcome{post: Gone}},
		{
			// The key sits above the leaves, so re-inserting it into the empty tree of the
			// commit has to grow the tree by a layer.
			name: "only record of the repo, a key of height 1",
			build: func(t *testing.T) *comatproto.SyncSubscribeRepos_Commit {
				r := newTestRepo(t, nil)
				p := r.path(post)
				for mst.HeightForKey([]byte(p)) < 1 {
					p = r.path(post)
				}
				r.commit(create(p))
				return r.commit(del(p))
			},
			want: map[string]Outcome{post: Gone},
		},
		{name: "first of several", build: deleteOne(map[string]int{post: 3, like: 2, follow: 2}, post, 0), want: map[string]Outcome{post: Kept}},
		{name: "middle of several", build: deleteOne(map[string]int{post: 3, like: 2, follow: 2}, post, 1), want: map[string]Outcome{post: Kept}},
		{name: "last of several", build: deleteOne(map[string]int{post: 3, like: 2, follow: 2}, post, -1), want: map[string]Outcome{post: Kept}},
		{name: "shared prefix on the right", build: deleteOne(map[string]int{post: 1, postgate: 2}, post, 0), want: map[string]Outcome{post: Gone}},
		{name: "shared prefix on the left", build: deleteOne(map[string]int{postDraft: 2, post: 1}, post, 0), want: map[string]Outcome{post: Gone}},
		{name: "shared prefix on both sides", build: deleteOne(map[string]int{postDraft: 2, post: 1, postgate: 2}, post, 0), want: map[string]Outcome{post: Gone}},
		{name: "like before likes", build: deleteOne(map[string]int{like: 1, likes: 3}, like, 0), want: map[string]Outcome{like: Gone}},
		{name: "likes after like", build: deleteOne(map[string]int{like: 3, likes: 1}, likes, 0), want: map[string]Outcome{likes: Gone}},
		{
			name: "two collections deleted, a third created",
			build: func(t *testing.T) *comatproto.SyncSubscribeRepos_Commit {
				r := newTestRepo(t, map[string]int{post: 1, like: 3, follow: 1})
				return r.commit(del(r.in(post)[0]), del(r.in(like)[1]), create(profile+"/self"))
			},
			want: map[string]Outcome{post: Gone, like: Kept},
		},
		{
			name: "every record of a collection in one commit",
			build: func(t *testing.T) *comatproto.SyncSubscribeRepos_Commit {
				r := newTestRepo(t, map[string]int{post: 3, postgate: 1, like: 1})
				p := r.in(post)
				return r.commit(del(p[2]), del(p[0]), del(p[1]))
			},
			want: map[string]Outcome{post: Gone},
		},
		{
			name: "last record deleted and a new one created",
			build: func(t *testing.T) *comatproto.SyncSubscribeRepos_Commit {
				r := newTestRepo(t, map[string]int{post: 1, like: 1})
				return r.commit(del(r.in(post)[0]), create(r.path(post)))
			},
			want: map[string]Outcome{post: Kept},
		},
		{
			name: "delete beside an update of the same collection",
			build: func(t *testing.T) *comatproto.SyncSubscribeRepos_Commit {
				r := newTestRepo(t, map[string]int{post: 2, like: 1})
				p := r.in(post)
				return r.commit(update(p[0]), del(p[1]))
			},
			want: map[string]Outcome{post: Kept},
		},
		{
			// indigo's NormalizeOps would invert the create first (its path sorts lower),
			// emptying the root at height 1, and the re-inserted delete would then not land
			// on prevData: VerifyCommitMessage fails this valid commit.
			name: "every record replaced, the new one higher in the tree",
			build: func(t *testing.T) *comatproto.SyncSubscribeRepos_Commit {
				r := newTestRepo(t, nil)
				old, replacement := r.path(postgate), r.path(like)
				for mst.HeightForKey([]byte(old)) != 0 {
					old = r.path(postgate)
				}
				for mst.HeightForKey([]byte(replacement)) < 1 {
					replacement = r.path(like)
				}
				r.commit(create(old))
				evt := r.commit(del(old), create(replacement))
				_, err := repo.VerifyCommitMessage(context.Background(), evt)
				require.ErrorContains(t, err, "prevData", "indigo's verification was fixed: drop verifyCommit's reordering")
				return evt
			},
			want: map[string]Outcome{postgate: Gone},
		},
		{
			name: "creates and updates only",
			build: func(t *testing.T) *comatproto.SyncSubscribeRepos_Commit {
				r := newTestRepo(t, map[string]int{post: 2})
				return r.commit(update(r.in(post)[0]), create(r.path(like)))
			},
			want: map[string]Outcome{},
		},

		// The proof cannot settle it.
		{
			name:    "no blocks",
			build:   tampered(func(evt *comatproto.SyncSubscribeRepos_Commit, _ *testRepo) { evt.Blocks = nil }),
			want:    map[string]Outcome{post: Unknown},
			reasons: []Reason{ReasonNoBlocks},
		},
		{
			name:    "tooBig",
			build:   tampered(func(evt *comatproto.SyncSubscribeRepos_Commit, _ *testRepo) { evt.TooBig = true }),
			want:    map[string]Outcome{post: Unknown},
			reasons: []Reason{ReasonTooBig},
		},
		{
			name: "truncated CAR",
			build: tampered(func(evt *comatproto.SyncSubscribeRepos_Commit, _ *testRepo) {
				evt.Blocks = evt.Blocks[:len(evt.Blocks)*2/3]
			}),
			want:    map[string]Outcome{post: Unknown},
			reasons: []Reason{ReasonInvalid},
		},
		{
			name:    "no prevData",
			build:   tampered(func(evt *comatproto.SyncSubscribeRepos_Commit, _ *testRepo) { evt.PrevData = nil }),
			want:    map[string]Outcome{post: Unknown},
			reasons: []Reason{ReasonNoPrevData},
		},
		{
			name:    "delete without prev",
			build:   tampered(func(evt *comatproto.SyncSubscribeRepos_Commit, _ *testRepo) { evt.Ops[0].Prev = nil }),
			want:    map[string]Outcome{post: Unknown},
			reasons: []Reason{ReasonLegacyOp},
		},
		{
			name: "prevData of another state",
			build: tampered(func(evt *comatproto.SyncSubscribeRepos_Commit, _ *testRepo) {
				c := evt.Commit // any CID that is not the inverted root
				evt.PrevData = &c
			}),
			want:    map[string]Outcome{post: Unknown},
			reasons: []Reason{ReasonPrevData},
		},
		{
			name: "ops that are not the diff",
			// The blocks delete the post; the message claims a like went. Inverting the claimed
			// op re-inserts a key that is still there, or needs a node the diff never had
			// (partial), depending on where the TID keys fall in the tree.
			build: tampered(func(evt *comatproto.SyncSubscribeRepos_Commit, r *testRepo) {
				evt.Ops[0].Path = r.in(like)[1]
			}),
			want:    map[string]Outcome{like: Unknown},
			reasons: []Reason{ReasonInvalid, ReasonPartial},
		},
		{
			name: "record block of a create missing",
			build: func(t *testing.T) *comatproto.SyncSubscribeRepos_Commit {
				r := newTestRepo(t, map[string]int{post: 1, like: 3})
				evt := r.commit(del(r.in(post)[0]), create(r.path(follow)))
				record := (*cid.Cid)(evt.Ops[1].Cid).KeyString()
				root, blks := readCARWithGoCar(t, evt.Blocks)
				blks = slices.DeleteFunc(blks, func(b blocks.Block) bool { return b.Cid().KeyString() == record })
				evt.Blocks = writeCAR(t, root, blks)
				return evt
			},
			want:    map[string]Outcome{post: Unknown},
			reasons: []Reason{ReasonInvalid},
		},
		{
			name:    "commit of another account",
			build:   tampered(func(evt *comatproto.SyncSubscribeRepos_Commit, _ *testRepo) { evt.Repo = "did:plc:someoneelse" }),
			want:    map[string]Outcome{post: Unknown},
			reasons: []Reason{ReasonInvalid},
		},
		{
			name: "neighbour nodes missing from the blocks",
			build: func(t *testing.T) *comatproto.SyncSubscribeRepos_Commit {
				r := newTestRepo(t, deepCounts())
				evt := r.commit(del(r.in(small)[0]))
				stripMSTNodes(t, evt)
				return evt
			},
			want: map[string]Outcome{small: Unknown},
			// indigo wraps mst.ErrPartialTree on most paths of a failed inversion, not all.
			reasons: []Reason{ReasonPartial, ReasonInvalid},
		},
	}
	cases = append(cases, deepCases()...)

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			evt := tc.build(t)
			got := Decide(context.Background(), evt)
			require.Len(t, got, len(tc.want), "verdicts: %v", got)
			for coll, want := range tc.want {
				v, ok := got[coll]
				require.True(t, ok, "no verdict for %s: %v", coll, got)
				require.Equal(t, want, v.Outcome, "%s: %+v", coll, v)
				if want == Unknown {
					require.Contains(t, tc.reasons, v.Reason, "%s: %v", coll, v.Err)
					require.Error(t, v.Err)
				} else {
					require.Empty(t, v.Reason)
					require.NoError(t, v.Err)
				}
			}
		})
	}
}

// small is the collection of deepCounts with few records, among 19 large ones.
const small = "com.example.small"

// deepCounts is 2,000 records over 20 collections: an MST three or four levels deep, where the
// neighbours of a deleted key are often in other nodes than the key was.
func deepCounts() map[string]int {
	counts := map[string]int{small: 5}
	for i := range 19 {
		counts[fmt.Sprintf("com.example.c%02d", i)] = 105
	}
	return counts
}

func deepCases() []decideCase {
	const big = "com.example.c07"
	deep := func(t *testing.T) *testRepo {
		r := newTestRepo(t, deepCounts())
		require.GreaterOrEqual(t, r.tree.Root.Height, 2, "MST of 2,000 records should have several levels")
		return r
	}
	return []decideCase{
		{
			name: "deep tree: first of a large collection",
			build: func(t *testing.T) *comatproto.SyncSubscribeRepos_Commit {
				r := deep(t)
				return r.commit(del(r.in(big)[0]))
			},
			want: map[string]Outcome{big: Kept},
		},
		{
			name: "deep tree: last of a large collection",
			build: func(t *testing.T) *comatproto.SyncSubscribeRepos_Commit {
				r := deep(t)
				p := r.in(big)
				return r.commit(del(p[len(p)-1]))
			},
			want: map[string]Outcome{big: Kept},
		},
		{
			name: "deep tree: a small collection emptied one commit at a time",
			build: func(t *testing.T) *comatproto.SyncSubscribeRepos_Commit {
				r := deep(t)
				p := r.in(small)
				for _, path := range p[:len(p)-1] {
					got := Decide(context.Background(), r.commit(del(path)))
					require.Equal(t, Kept, got[small].Outcome, "delete %s: %+v", path, got[small])
				}
				return r.commit(del(p[len(p)-1]))
			},
			want: map[string]Outcome{small: Gone},
		},
		{
			name: "deep tree: many ops across collections",
			build: func(t *testing.T) *comatproto.SyncSubscribeRepos_Commit {
				r := deep(t)
				ops := []testOp{create(r.path("com.example.c03"))}
				for _, path := range r.in(small) {
					ops = append(ops, del(path))
				}
				return r.commit(append(ops, del(r.in("com.example.c12")[50]), update(r.in(big)[3]))...)
			},
			want: map[string]Outcome{small: Gone, "com.example.c12": Kept},
		},
	}
}

// stripMSTNodes rewrites evt's CAR without the MST nodes below the root: the commit, the root
// node and the records stay.
func stripMSTNodes(t *testing.T, evt *comatproto.SyncSubscribeRepos_Commit) {
	root, blks := readCARWithGoCar(t, evt.Blocks)
	keep := map[string]bool{root.KeyString(): true}
	for _, op := range evt.Ops {
		if op.Cid != nil {
			keep[(*cid.Cid)(op.Cid).KeyString()] = true
		}
	}
	commit, _, err := repo.LoadCommitFromCAR(context.Background(), bytes.NewReader(evt.Blocks))
	require.NoError(t, err)
	keep[commit.Data.KeyString()] = true
	kept := blks[:0]
	for _, b := range blks {
		if keep[b.Cid().KeyString()] {
			kept = append(kept, b)
		}
	}
	require.Less(t, len(kept), len(blks), "the diff should have MST nodes below the root")
	evt.Blocks = writeCAR(t, root, kept)
}
