// SPDX-License-Identifier: MIT

// Command verify checks qund's audit ledger with Go's reference code for transparency
// logs: golang.org/x/mod/sumdb/note for the C2SP signed-note checkpoint and
// golang.org/x/mod/sumdb/tlog for the RFC 6962 hashes and proofs.  It is the other
// half of tests/api/test_11_interop_go.py: qund's C code and Go's code were written
// independently, so agreement here means a third party can audit the log with stock
// tooling.
//
// It builds offline from Debian's golang-golang-x-mod-dev, without modules:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode GOPROXY=off go build -o verify tests/interop/verify.go
//
// Input is one JSON document, on stdin or in the file named by the only argument.
// Every member is optional except that at least one verifier key is needed; the
// shapes are those the HTTP API returns, so a client can paste answers in unchanged:
//
//	{
//	  "verifier_key": "<name>+<hex key id>+<base64(0x01 || ed25519 public key)>",
//	  "verifier_keys": ["<verifier key>", ...],
//	  "signer_key":   "PRIVATE+KEY+<name>+<hex id>+<base64(0x01 || seed)>",
//	  "checkpoints":  ["<signed note text>", ...],
//	  "entries":      [{"index": 0, "leaf_hash": "<hex>", "entry": "<text>"}, ...],
//	  "inclusion":    [{"index": i, "tree_size": n, "leaf_hash": "<hex>", "proof": ["<hex>", ...],
//	                    "root": "<base64>"}, ...],
//	  "consistency":  [{"old": m, "new": n, "proof": ["<hex>", ...],
//	                    "old_root": "<base64>", "new_root": "<base64>"}, ...]
//	}
//
// verifier_keys adds keys that were current earlier: after a key rotation the log
// goes on, so old and new checkpoints, each under its own key and origin, are
// compared by consistency proofs.  A checkpoint's origin must be the name of a key
// that signed it.  entries must be the log's prefix in order (index 0, 1, ...); an entry without its
// text (a user who may not read it) is checked only by its leaf hash.  A proof is
// checked against the root of a verified checkpoint of that size; failing that, the
// root Go recomputes from the entries' leaf hashes.  An explicit root/old_root/new_root
// (base64, as in a checkpoint) overrides both: it stands for a root the client kept
// from elsewhere, and is how a test feeds a wrong one.  signer_key, if given, makes
// Go re-sign each checkpoint's text; Ed25519 is deterministic, so the result must be
// byte-for-byte the note qund served.
//
// One line per check, "ok   ..." or "FAIL ...", "skip ..." for a check the input
// leaves impossible, then a summary.  Exit status: 0 if
// every check passed, 1 if any failed, 2 if the input could not be read.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type entry struct {
	Index    int64   `json:"index"`
	LeafHash string  `json:"leaf_hash"`
	Entry    *string `json:"entry"`
}

type inclusion struct {
	Index    int64    `json:"index"`
	TreeSize int64    `json:"tree_size"`
	LeafHash string   `json:"leaf_hash"`
	Proof    []string `json:"proof"`
	Root     string   `json:"root"`
}

type consistency struct {
	Old     int64    `json:"old"`
	New     int64    `json:"new"`
	Proof   []string `json:"proof"`
	OldRoot string   `json:"old_root"`
	NewRoot string   `json:"new_root"`
}

type input struct {
	VerifierKey  string        `json:"verifier_key"`
	VerifierKeys []string      `json:"verifier_keys"`
	SignerKey    string        `json:"signer_key"`
	Checkpoints  []string      `json:"checkpoints"`
	Entries      []entry       `json:"entries"`
	Inclusion    []inclusion   `json:"inclusion"`
	Consistency  []consistency `json:"consistency"`
}

var checks, failures int

func ok(format string, args ...interface{}) {
	checks++
	fmt.Printf("ok   "+format+"\n", args...)
}

// skip reports a check that could not be made from the input; it is not a failure.
func skip(format string, args ...interface{}) {
	fmt.Printf("skip "+format+"\n", args...)
}

func fail(format string, args ...interface{}) {
	checks++
	failures++
	fmt.Printf("FAIL "+format+"\n", args...)
}

// stored is the log's stored hashes in tlog's layout (StoredHashIndex), built from the
// leaf hashes the way a Go log server builds them while appending.  It is the
// HashReader behind TreeHash, ProveRecord and ProveTree.
type stored []tlog.Hash

func (s stored) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(s)) {
			return nil, fmt.Errorf("stored hash %d is beyond the %d known", x, len(s))
		}
		out[i] = s[x]
	}
	return out, nil
}

func parseHex(s string) (tlog.Hash, error) {
	var h tlog.Hash
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != tlog.HashSize {
		return h, fmt.Errorf("%q is not %d bytes of hex", s, tlog.HashSize)
	}
	copy(h[:], b)
	return h, nil
}

func parseHexList(list []string) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(list))
	for i, s := range list {
		h, err := parseHex(s)
		if err != nil {
			return nil, err
		}
		out[i] = h
	}
	return out, nil
}

// tlog.ParseHash reads base64, the checkpoint's encoding.
func parseB64(s string) (tlog.Hash, error) { return tlog.ParseHash(s) }

// parseCheckpoint splits the C2SP tlog-checkpoint body: origin, decimal size, base64
// root, then optional extension lines, which we ignore as the spec allows.
// tlog.ParseTree would insist on the Go checksum database's own first line.
func parseCheckpoint(text string) (origin string, size int64, root tlog.Hash, err error) {
	lines := strings.Split(text, "\n")
	if len(lines) < 4 || lines[len(lines)-1] != "" {
		return "", 0, root, fmt.Errorf("not origin, size and root lines")
	}
	origin = lines[0]
	size, err = strconv.ParseInt(lines[1], 10, 64)
	// The size must be canonical decimal: no sign, no leading zeros.
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return "", 0, root, fmt.Errorf("bad tree size %q", lines[1])
	}
	root, err = parseB64(lines[2])
	if err != nil || root.String() != lines[2] {
		return "", 0, root, fmt.Errorf("bad root hash %q", lines[2])
	}
	return origin, size, root, nil
}

func main() {
	var raw []byte
	var err error
	switch len(os.Args) {
	case 1:
		raw, err = io.ReadAll(os.Stdin)
	case 2:
		raw, err = os.ReadFile(os.Args[1])
	default:
		err = fmt.Errorf("usage: verify [input.json]")
	}
	var in input
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields() // a misspelt member would silently skip a check
		err = dec.Decode(&in)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "verify:", err)
		os.Exit(2)
	}
	run(&in)
	fmt.Printf("summary: %d checks, %d failed\n", checks, failures)
	if failures > 0 {
		os.Exit(1)
	}
}

func run(in *input) {
	var verifiers []note.Verifier
	keys := in.VerifierKeys
	if in.VerifierKey != "" {
		keys = append([]string{in.VerifierKey}, keys...)
	}
	for _, k := range keys {
		v, err := note.NewVerifier(k)
		if err != nil {
			fail("verifier key %q: note.NewVerifier: %v", k, err)
			continue
		}
		ok("verifier key parsed by note.NewVerifier: name %s, key hash %08x", v.Name(), v.KeyHash())
		verifiers = append(verifiers, v)
	}
	if len(verifiers) == 0 {
		fail("no usable verifier key")
		return
	}
	known := note.VerifierList(verifiers...)

	var signer note.Signer
	if in.SignerKey != "" {
		s, err := note.NewSigner(strings.TrimSpace(in.SignerKey))
		if err != nil {
			fail("signer key: note.NewSigner: %v", err)
		} else if _, err := known.Verifier(s.Name(), s.KeyHash()); err != nil {
			fail("signer key %s/%08x matches no verifier key", s.Name(), s.KeyHash())
		} else {
			ok("signer key parsed by note.NewSigner and matches its verifier key")
			signer = s
		}
	}

	// Roots vouched for by a signature, by tree size.
	signed := map[int64]tlog.Hash{}
	for i, msg := range in.Checkpoints {
		n, err := note.Open([]byte(msg), known)
		if err != nil {
			fail("checkpoint %d: note.Open: %v", i, err)
			continue
		}
		origin, size, root, err := parseCheckpoint(n.Text)
		if err != nil {
			fail("checkpoint %d: %v", i, err)
			continue
		}
		// The origin names the log; a signature by some other trusted key must not
		// vouch for it (tlog-checkpoint: verifiers check the origin is the expected one).
		signedByOrigin := false
		for _, sig := range n.Sigs {
			signedByOrigin = signedByOrigin || sig.Name == origin
		}
		if !signedByOrigin {
			fail("checkpoint %d: origin %q is not the name of a key that signed it", i, origin)
			continue
		}
		if prev, seen := signed[size]; seen && prev != root {
			// Two signed roots for one size: the log forked.
			fail("checkpoint %d: size %d signed with two roots, %s and %s", i, size, prev, root)
			continue
		}
		signed[size] = root
		ok("checkpoint %d: signature verified by note.Open; origin %s, size %d, root %s", i, origin, size, root)
		if signer != nil && signer.Name() == origin {
			again, err := note.Sign(&note.Note{Text: n.Text}, signer)
			if err != nil || string(again) != msg {
				fail("checkpoint %d: note.Sign with the signer key gives a different note (%v):\n%s", i, err, again)
			} else {
				ok("checkpoint %d: note.Sign reproduces it byte for byte", i)
			}
		}
	}

	// Entries: the record hash of each text, and the stored hashes for the tree.
	var tree stored
	for i, e := range in.Entries {
		if e.Index != int64(i) {
			fail("entry %d: has index %d; entries must be the log's prefix in order", i, e.Index)
			tree = nil
			break
		}
		h, err := parseHex(e.LeafHash)
		if err != nil {
			fail("entry %d: leaf_hash: %v", i, err)
			tree = nil
			break
		}
		if e.Entry != nil {
			if rh := tlog.RecordHash([]byte(*e.Entry)); rh != h {
				fail("entry %d: tlog.RecordHash of the text is %x, the server says %x", i, rh[:], h[:])
			} else {
				ok("entry %d: tlog.RecordHash of the text equals the leaf hash", i)
			}
		}
		add, err := tlog.StoredHashesForRecordHash(int64(i), h, tree)
		if err != nil {
			fail("entry %d: StoredHashesForRecordHash: %v", i, err)
			tree = nil
			break
		}
		tree = append(tree, add...)
	}
	leaves := int64(len(in.Entries))
	if tree == nil {
		leaves = 0
	}

	// The root of the first size leaves, as Go computes it.
	treeHash := func(size int64) (tlog.Hash, bool) {
		if size < 1 || size > leaves {
			return tlog.Hash{}, false
		}
		h, err := tlog.TreeHash(size, tree)
		return h, err == nil
	}
	sizes := make([]int64, 0, len(signed))
	for size := range signed {
		sizes = append(sizes, size)
	}
	sort.Slice(sizes, func(i, j int) bool { return sizes[i] < sizes[j] })
	for _, size := range sizes {
		root := signed[size]
		if size == 0 {
			// RFC 6962 defines the empty tree's hash as SHA-256 of nothing and qund signs
			// that; Go's tlog defines it as 32 zero bytes, so compare with the RFC.
			if root != tlog.Hash(sha256.Sum256(nil)) {
				fail("checkpoint of size 0: root %s is not SHA-256(\"\") (RFC 6962 section 2.1)", root)
			} else {
				ok("checkpoint of size 0: root is SHA-256(\"\") as RFC 6962 defines the empty tree")
			}
			continue
		}
		if h, have := treeHash(size); !have {
			skip("checkpoint of size %d: root not recomputed, the input has only %d entries", size, leaves)
		} else if h != root {
			fail("checkpoint of size %d: tlog.TreeHash over the leaf hashes is %s, the checkpoint says %s", size, h, root)
		} else {
			ok("checkpoint of size %d: tlog.TreeHash over the leaf hashes equals the signed root", size)
		}
	}

	// rootFor picks the root a proof is checked against, and says where it came from.
	rootFor := func(size int64, explicit string) (tlog.Hash, string, error) {
		if explicit != "" {
			h, err := parseB64(explicit)
			return h, "given root", err
		}
		if h, have := signed[size]; have {
			return h, "signed root", nil
		}
		if h, have := treeHash(size); have {
			return h, "root recomputed from the leaves", nil
		}
		return tlog.Hash{}, "", fmt.Errorf("no root known for size %d", size)
	}

	for _, p := range in.Inclusion {
		what := fmt.Sprintf("inclusion of %d in %d", p.Index, p.TreeSize)
		root, from, err := rootFor(p.TreeSize, p.Root)
		var leaf tlog.Hash
		var proof []tlog.Hash
		if err == nil {
			leaf, err = parseHex(p.LeafHash)
		}
		if err == nil {
			proof, err = parseHexList(p.Proof)
		}
		if err != nil {
			fail("%s: %v", what, err)
			continue
		}
		if p.Index < leaves {
			// The proof is about the same leaf the entries listing showed.
			if h, _ := parseHex(in.Entries[p.Index].LeafHash); h != leaf {
				fail("%s: leaf hash %x differs from entry %d's", what, leaf[:], p.Index)
			}
		}
		if err := tlog.CheckRecord(proof, p.TreeSize, root, p.Index, leaf); err != nil {
			fail("%s: tlog.CheckRecord against the %s: %v", what, from, err)
		} else {
			ok("%s: tlog.CheckRecord accepts the %d-hash proof against the %s", what, len(proof), from)
		}
		if p.TreeSize <= leaves {
			// Go's own proof from the same leaves must be the very same list.
			mine, err := tlog.ProveRecord(p.TreeSize, p.Index, tree)
			if err != nil || !sameHashes(mine, proof) {
				fail("%s: differs from tlog.ProveRecord's proof (%v)", what, err)
			} else {
				ok("%s: identical to tlog.ProveRecord's proof", what)
			}
		}
	}

	for _, p := range in.Consistency {
		what := fmt.Sprintf("consistency of %d with %d", p.Old, p.New)
		oldRoot, oldFrom, err := rootFor(p.Old, p.OldRoot)
		var newRoot tlog.Hash
		var newFrom string
		var proof []tlog.Hash
		if err == nil {
			newRoot, newFrom, err = rootFor(p.New, p.NewRoot)
		}
		if err == nil {
			proof, err = parseHexList(p.Proof)
		}
		if err != nil {
			fail("%s: %v", what, err)
			continue
		}
		if err := tlog.CheckTree(proof, p.New, newRoot, p.Old, oldRoot); err != nil {
			fail("%s: tlog.CheckTree (old: %s, new: %s): %v", what, oldFrom, newFrom, err)
		} else {
			ok("%s: tlog.CheckTree accepts the %d-hash proof (old: %s, new: %s)", what, len(proof), oldFrom, newFrom)
		}
		if p.New <= leaves && p.Old >= 1 && p.Old <= p.New {
			mine, err := tlog.ProveTree(p.New, p.Old, tree)
			if err != nil || !sameHashes(mine, proof) {
				fail("%s: differs from tlog.ProveTree's proof (%v)", what, err)
			} else {
				ok("%s: identical to tlog.ProveTree's proof", what)
			}
		}
	}
}

func sameHashes(a, b []tlog.Hash) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
