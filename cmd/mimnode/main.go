// Command mimnode runs and manages a mimnode node: one binary per agency that
// shares city context data peer to peer. See `mimnode help`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mimnode:", err)
		os.Exit(1)
	}
}
