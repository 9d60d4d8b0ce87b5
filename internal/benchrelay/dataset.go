// Package benchrelay is the benchmark's synthetic source relay: a network-shaped data set
// that is computed, not stored (so 10M pairs cost no memory), served like bsky.network's
// collectiondir (opaque cursors, first-seen order, a cursor on every full page) with a
// configurable latency per request and per DID, and with the request rate it sees recorded.
package benchrelay

import (
	"fmt"
	"math"
)

// Spec shapes a data set.
type Spec struct {
	// Collections is how many collections; Pairs how many (DID, collection) pairs in all.
	Collections int
	Pairs       int
	// LargestShare is the share of all pairs in the largest collection (the network's
	// largest hold about 30%).
	LargestShare float64
	// Prefix names the collections: <Prefix>.c0000, .c0001, … (largest first).
	Prefix string
	// RandomDIDs spreads the DIDs over all 24 characters, as the network's are random: the
	// index then compresses as a real one does. By default the account number is written
	// out in base32, so most characters are the same and the index compresses far better
	// than a real one.
	RandomDIDs bool
}

// Dataset is a computed data set: collection i holds Sizes[i] DIDs, DID j of collection i is
// account (A[i]*j + B[i]) mod Universe, an affine permutation, so a collection never repeats a
// DID, collections share DIDs, and first-seen order is not DID order.
type Dataset struct {
	Names    []string
	Sizes    []int
	A, B     []uint64
	Universe uint64
	// RandomDIDs: see Spec.
	RandomDIDs bool
	index      map[string]int
}

// NewDataset builds the data set: the largest collection holds LargestShare of the pairs,
// the rest follow a 1/rank long tail (with 1,000 collections and 1M pairs, about nine in ten
// fit in one page of 1,000), and every collection holds at least one DID.
func NewDataset(s Spec) *Dataset {
	if s.Prefix == "" {
		s.Prefix = "com.bench"
	}
	n := max(s.Collections, 1)
	largest := max(int(float64(s.Pairs)*s.LargestShare), 1)
	sizes := make([]int, n)
	sizes[0] = largest
	rest := s.Pairs - largest
	if n > 1 {
		var harmonic float64
		for r := 2; r <= n; r++ {
			harmonic += 1 / float64(r)
		}
		c := float64(rest) / harmonic
		left := rest
		for i := 1; i < n; i++ {
			sz := max(int(math.Round(c/float64(i+1))), 1)
			sizes[i] = sz
			left -= sz
		}
		sizes[1] += max(left, 0) // rounding: keep the total exact where it can be
	}
	d := &Dataset{
		Names:    make([]string, n),
		Sizes:    sizes,
		A:        make([]uint64, n),
		B:        make([]uint64, n),
		Universe: nextPrime(uint64(float64(largest)*1.2) + 2),
		index:    make(map[string]int, n),

		RandomDIDs: s.RandomDIDs,
	}
	for i := range n {
		d.Names[i] = fmt.Sprintf("%s.c%04d", s.Prefix, i)
		d.index[d.Names[i]] = i
		// Any multiplier in [1, Universe) is coprime with a prime universe.
		d.A[i] = 1 + (uint64(i)*2654435761+97)%(d.Universe-1)
		d.B[i] = (uint64(i) * 40503) % d.Universe
	}
	return d
}

// Pairs is the total number of (DID, collection) pairs.
func (d *Dataset) Pairs() int {
	t := 0
	for _, s := range d.Sizes {
		t += s
	}
	return t
}

// Account is the account number of DID j of collection i.
func (d *Dataset) Account(i, j int) uint64 {
	return (d.A[i]*uint64(j) + d.B[i]) % d.Universe
}

// AppendDID appends the DID of an account: did:plc: and 24 base32 characters, like the network's.
func AppendDID(b []byte, account uint64) []byte {
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	b = append(b, "did:plc:"...)
	var id [24]byte
	for k := 23; k >= 0; k-- {
		id[k] = alphabet[account&31]
		account >>= 5
	}
	return append(b, id[:]...)
}

// DID is DID j of collection i.
func (d *Dataset) DID(i, j int) string { return string(d.AppendDID(nil, d.Account(i, j))) }

// AppendDID appends an account's DID in this data set's form (Spec.RandomDIDs).
func (d *Dataset) AppendDID(b []byte, account uint64) []byte {
	if d.RandomDIDs {
		return AppendRandomDID(b, account)
	}
	return AppendDID(b, account)
}

// AppendRandomDID appends an account's DID with all 24 characters spread: a bijective mix of
// the account number fills the first 64 bits (so no two accounts share a DID), a second mix
// the remaining 56.
func AppendRandomDID(b []byte, account uint64) []byte {
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	hi := mix64(account)
	lo := mix64(hi ^ 0x5851f42d4c957f2d)
	b = append(b, "did:plc:"...)
	for k := range 24 {
		// Bits 5k..5k+4 of the 128-bit hi:lo, from the top.
		var v uint64
		switch bit := 5 * k; {
		case bit+5 <= 64:
			v = hi >> (59 - bit)
		case bit < 64:
			v = hi<<(bit-59) | lo>>(123-bit)
		default:
			v = lo >> (123 - bit)
		}
		b = append(b, alphabet[v&31])
	}
	return b
}

// mix64 is splitmix64's finaliser: a bijection on uint64 that spreads every input bit.
func mix64(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Requests is how many requests paging every collection takes at limit: one per page, plus
// the empty last page that follows a collection whose size is a multiple of limit.
func (d *Dataset) Requests(limit int) int {
	t := 0
	for _, s := range d.Sizes {
		t += s/limit + 1
	}
	return t
}

func nextPrime(n uint64) uint64 {
	if n < 3 {
		return 3
	}
	if n%2 == 0 {
		n++
	}
	for ; ; n += 2 {
		prime := true
		for f := uint64(3); f*f <= n; f += 2 {
			if n%f == 0 {
				prime = false
				break
			}
		}
		if prime {
			return n
		}
	}
}
