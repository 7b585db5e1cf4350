// Command mimnode runs and manages a mimnode node: one binary per agency that
// shares city context data peer to peer. See `mimnode help`.
package main

import (
	"context"
	"errors"
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
	// stop cancels ctx too: whether a signal came is read before it.
	interrupted := ctx.Err() != nil
	stop()
	if err != nil {
		msg, code := failure(interrupted, err)
		fmt.Fprintln(os.Stderr, msg)
		os.Exit(code)
	}
}

// failure is what mimnode prints and its exit status when a command
// failed with err. A command stopped by Ctrl-C or SIGTERM (interrupted)
// before it could finish (a node still starting, say) says it was
// interrupted rather than "context canceled", and exits 130, the status
// of a command Ctrl-C stopped.
func failure(interrupted bool, err error) (string, int) {
	if !interrupted || !errors.Is(err, context.Canceled) {
		return "mimnode: " + err.Error(), 1
	}
	if err.Error() == context.Canceled.Error() {
		return "mimnode: interrupted", 130
	}
	return "mimnode: interrupted: " + err.Error(), 130
}
