package ordered_test

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/mimnode/mimnode/internal/ordered"
)

func produceN(n int) func(emit func(int) error) error {
	return func(emit func(int) error) error {
		for i := range n {
			if err := emit(i); err != nil {
				return err
			}
		}
		return nil
	}
}

func itoa(in []int) ([]string, error) {
	out := make([]string, len(in))
	for i, v := range in {
		out[i] = strconv.Itoa(v)
	}
	return out, nil
}

func TestMapKeepsOrder(t *testing.T) {
	for _, n := range []int{0, 1, 7, 128, 1000, 1001} {
		var got []string
		err := ordered.Map(context.Background(), 7, produceN(n), itoa, func(out []string) error {
			got = append(got, out...)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n {
			t.Fatalf("n=%d: got %d results", n, len(got))
		}
		for i, s := range got {
			if s != strconv.Itoa(i) {
				t.Fatalf("n=%d: result %d is %q", n, i, s)
			}
		}
	}
}

func TestMapStopsAtTheFirstError(t *testing.T) {
	boom := errors.New("boom")
	// A worker's error, a consumer's, a producer's; and a cancelled context.
	work := func(in []int) ([]string, error) {
		if in[0] >= 70 {
			return nil, boom
		}
		return itoa(in)
	}
	seen := 0
	err := ordered.Map(context.Background(), 10, produceN(100000), work, func(out []string) error { seen += len(out); return nil })
	if !errors.Is(err, boom) || seen != 70 {
		t.Errorf("work error: err=%v after %d results, want boom after 70", err, seen)
	}
	err = ordered.Map(context.Background(), 10, produceN(100000), itoa, func(out []string) error {
		if out[0] == "30" {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Errorf("consume error: err=%v", err)
	}
	err = ordered.Map(context.Background(), 10, func(emit func(int) error) error {
		_ = emit(1)
		return boom
	}, itoa, func([]string) error { return nil })
	if !errors.Is(err, boom) {
		t.Errorf("produce error: err=%v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	err = ordered.Map(ctx, 10, produceN(1<<30), itoa, func(out []string) error {
		if out[0] == "50" {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err=%v", err)
	}
}
