// Package ordered runs the middle of a pipeline on every core and keeps
// its order: one goroutine produces items, workers transform chunks of
// them in parallel, and the caller consumes the results in the order the
// items were produced. The node uses it where reading is sequential (a
// store iteration, a merge of blocks) and decoding is the expensive part.
package ordered

import (
	"context"
	"runtime"
	"sync"
)

type chunk[In, Out any] struct {
	in   []In
	out  []Out
	err  error
	done chan struct{}
}

// Map calls produce on its own goroutine; produce hands items to emit,
// which returns an error once the pipeline is stopping (produce should
// then return it). Items are cut into chunks of size items; work turns
// each chunk into its results on one of GOMAXPROCS workers; consume gets
// each chunk's results on the caller's goroutine, in production order.
// Map stops at the first error of produce, work or consume, or when ctx
// ends, and returns that error once every goroutine it started is done.
func Map[In, Out any](ctx context.Context, size int, produce func(emit func(In) error) error,
	work func([]In) ([]Out, error), consume func([]Out) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := max(1, runtime.GOMAXPROCS(0))
	ordered := make(chan *chunk[In, Out], 2*workers)
	todo := make(chan *chunk[In, Out], 2*workers)
	var produceErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(ordered)
		defer close(todo)
		c := &chunk[In, Out]{done: make(chan struct{})}
		send := func() error {
			select {
			case ordered <- c:
			case <-ctx.Done():
				return ctx.Err()
			}
			todo <- c
			c = &chunk[In, Out]{done: make(chan struct{})}
			return nil
		}
		produceErr = produce(func(item In) error {
			c.in = append(c.in, item)
			if len(c.in) == size {
				return send()
			}
			return nil
		})
		if produceErr == nil && len(c.in) > 0 {
			produceErr = send()
		}
	})
	for range workers {
		wg.Go(func() {
			for c := range todo {
				c.out, c.err = work(c.in)
				c.in = nil
				close(c.done)
			}
		})
	}
	defer wg.Wait()
	defer cancel() // before wg.Wait: stops the producer on an early return
	for c := range ordered {
		<-c.done
		if c.err != nil {
			return c.err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := consume(c.out); err != nil {
			return err
		}
	}
	// ordered is closed: the producer is done and produceErr is set.
	if produceErr != nil {
		return produceErr
	}
	return ctx.Err()
}
