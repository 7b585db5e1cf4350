package main

import (
	"runtime"

	"github.com/mimnode/mimnode/node"
)

func version() string { return node.Version + " (" + runtime.Version() + ")" }
