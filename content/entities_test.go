package content

import (
	"errors"
	"testing"
)

// TestEntityBuilderAddBlockMatchesFullBuild: a build that takes a run of
// blocks of an earlier build whole (AddBlock) and adds the entities after
// them one by one makes the manifest a build of every entity makes.
func TestEntityBuilderAddBlockMatchesFullBuild(t *testing.T) {
	es := makeEntities(t, 3000, 3)
	full := buildEntities(t, es)
	if len(full.m.Blocks) < 6 {
		t.Fatalf("%d blocks; the test needs several", len(full.m.Blocks))
	}
	for _, kept := range []int{0, 1, len(full.m.Blocks) / 2, len(full.m.Blocks) - 1, len(full.m.Blocks)} {
		emitted := 0
		b := NewEntityBuilder(func(Block) error { emitted++; return nil })
		next := 0
		for _, r := range full.m.Blocks[:kept] {
			if err := b.AddBlock(r); err != nil {
				t.Fatalf("AddBlock(block of %s..%s) = %v", r.First, r.Last, err)
			}
			next += int(r.Count)
		}
		for _, e := range es[next:] {
			if err := b.Add(e.id, e.json); err != nil {
				t.Fatal(err)
			}
		}
		m, err := b.Finish()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := versionID(t, m), versionID(t, full.m); got != want {
			t.Errorf("%d blocks kept: version %s, want %s", kept, got, want)
		}
		if want := len(full.m.Blocks) - kept; emitted != want {
			t.Errorf("%d blocks kept: emitted %d blocks, want %d", kept, emitted, want)
		}
	}
}

func TestEntityBuilderAddBlockRejects(t *testing.T) {
	es := makeEntities(t, 600, 4)
	full := buildEntities(t, es)
	r0, r1 := full.m.Blocks[0], full.m.Blocks[1]
	cases := []struct {
		name string
		run  func(b *EntityBuilder) error
	}{
		{"while a block is pending", func(b *EntityBuilder) error {
			if err := b.Add(es[0].id, es[0].json); err != nil {
				return nil // not the error under test
			}
			return b.AddBlock(r1)
		}},
		{"out of order", func(b *EntityBuilder) error {
			if err := b.AddBlock(r1); err != nil {
				return nil
			}
			return b.AddBlock(r0)
		}},
		{"entity before the block's last", func(b *EntityBuilder) error {
			if err := b.AddBlock(r0); err != nil {
				return nil
			}
			return b.Add(r0.Last, es[0].json)
		}},
		{"no entities", func(b *EntityBuilder) error {
			r := r0
			r.Count = 0
			return b.AddBlock(r)
		}},
	}
	for _, tc := range cases {
		b := NewEntityBuilder(func(Block) error { return nil })
		if err := tc.run(b); !errors.Is(err, ErrInput) {
			t.Errorf("%s: error %v, want ErrInput", tc.name, err)
		}
	}
}
