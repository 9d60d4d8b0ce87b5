package rocksindex

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// UnlistedAfter walks the index's accounts in DID order, a stretch at a time, and returns
// those the sweep's relay did not list and that are not deleted; another sweep's marks do not
// count, and ForgetListed drops a sweep's.
func TestUnlistedAfterWalksTheAccountsTheRelayDidNotList(t *testing.T) {
	t.Parallel()
	const a, b, c, d, e = "did:plc:a", "did:plc:b", "did:plc:c", "did:plc:d", "did:plc:e"
	ix := openTemp(t)
	_, err := ix.AddPairs([]Pair{{"app.bsky.feed.post", a}, {"app.bsky.feed.like", a}, {"app.bsky.feed.post", b},
		{"app.bsky.feed.post", c}, {"app.bsky.feed.post", d}, {"app.bsky.feed.post", e}})
	require.NoError(t, err)
	require.NoError(t, ix.SetAccountStatus(c, "takendown"))
	_, _, err = ix.RemoveAccount(d)
	require.NoError(t, err)
	require.NoError(t, ix.MarkListed(7, []string{b, e}))
	require.NoError(t, ix.MarkListed(8, []string{a}))

	var got []string
	after := ""
	for steps := 0; ; steps++ {
		require.Less(t, steps, 10)
		unlisted, next, err := ix.UnlistedAfter(7, after, 2, 10)
		require.NoError(t, err)
		got = append(got, unlisted...)
		if next == "" {
			break
		}
		require.Greater(t, next, after)
		after = next
	}
	require.Equal(t, []string{a, c}, got, "a (listed by another sweep only) and c (hidden); not b, e (listed) nor d (deleted)")

	require.NoError(t, ix.ForgetListed(7))
	all, _, err := ix.UnlistedAfter(7, "", 10, 10)
	require.NoError(t, err)
	require.Equal(t, []string{a, b, c, e}, all)
	first, next, err := ix.UnlistedAfter(7, "", 10, 3)
	require.NoError(t, err)
	require.Equal(t, []string{a, b, c}, first, "at most 3")
	rest, next, err := ix.UnlistedAfter(7, next, 10, 3)
	require.NoError(t, err)
	require.Equal(t, []string{e}, rest, "on from the last returned")
	require.Equal(t, e, next)
	other, _, err := ix.UnlistedAfter(8, "", 10, 10)
	require.NoError(t, err)
	require.Equal(t, []string{b, c, e}, other, "sweep 8's marks stay")
}
