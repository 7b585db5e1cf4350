package store

import (
	"slices"
	"testing"
)

// TestPresent: keys given in any order, some held, some not, some past
// the last held key, come back marked each at its own index.
func TestPresent(t *testing.T) {
	db, err := Open("", Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *Txn) error {
		for _, k := range []string{"p/b", "p/d", "p/e", "q/a"} {
			if err := tx.Set([]byte(k), nil); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	keys := [][]byte{[]byte("p/e"), []byte("p/a"), []byte("p/d"), []byte("p/z"), []byte("p/c"), []byte("p/b")}
	var got []bool
	if err := db.View(func(tx *Txn) error { got = tx.Present([]byte("p/"), keys); return nil }); err != nil {
		t.Fatal(err)
	}
	if want := []bool{true, false, true, false, false, true}; !slices.Equal(got, want) {
		t.Errorf("Present = %v, want %v", got, want)
	}
}
