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
	// libp2p logs on its own, to stderr, at error and above. When its host
	// fails to start (a listen port taken), the node reports the error
	// with what to do, and libp2p's dependency injection ("p2p-config")
	// would print it three more times with library file paths first. An
	// operator's GOLOG_LOG_LEVEL is kept.
	if _, set := os.LookupEnv("GOLOG_LOG_LEVEL"); !set {
		os.Setenv("GOLOG_LOG_LEVEL", "error,p2p-config=ERROR+4")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mimnode:", err)
		os.Exit(1)
	}
}
