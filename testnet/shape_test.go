package testnet

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
)

func TestShapeAddsLatencyAndLimitsBandwidth(t *testing.T) {
	net := New(t, Shape{Cities: 1, AgenciesPerCity: 2}, Options{Shaping: true}).Federate()
	a, b := net.Members[0].Node(), net.Members[1].Node()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	net.Shape(0, 1, Link{Latency: 60 * time.Millisecond})
	rtt, err := a.Ping(ctx, b.ID())
	if err != nil {
		t.Fatal(err)
	}
	// Lower bounds only: a busy machine can make things slower, never faster.
	if rtt < 120*time.Millisecond {
		t.Fatalf("round trip over a 60 ms link took %s, want at least 120 ms", rtt)
	}

	const size, rate = 192 << 10, 128 << 10 // 1.5 s at the link's rate
	net.Shape(0, 1, Link{Bandwidth: rate})
	done := make(chan int64, 1)
	b.Host().SetStreamHandler("/testnet/sink/1", func(s network.Stream) {
		k, _ := io.Copy(io.Discard, s)
		s.Close()
		done <- k
	})
	s, err := a.Host().NewStream(ctx, b.ID(), "/testnet/sink/1")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := s.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	s.CloseWrite()
	if got := <-done; got != size {
		t.Fatalf("sink got %d bytes, want %d", got, size)
	}
	if took := time.Since(start); took < time.Second {
		t.Fatalf("%d bytes over a %d B/s link took %s, want at least 1 s", size, rate, took)
	}

	net.Unshape(0, 1)
	if _, err := a.Ping(ctx, b.ID()); err != nil {
		t.Fatalf("ping after Unshape: %v", err)
	}
}

func TestShapeNeedsShapingOption(t *testing.T) {
	net, err := Start(context.Background(), Shape{Cities: 1, AgenciesPerCity: 2}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	if net.Shape(0, 1, Link{Latency: time.Millisecond}); !errors.Is(net.Err(), ErrNoShaping) {
		t.Fatalf("Shape without Options.Shaping: %v, want ErrNoShaping", net.Err())
	}
}
