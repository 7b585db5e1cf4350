package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/mimnode/mimnode/node"
	"github.com/mimnode/mimnode/node/api"
	"github.com/mimnode/mimnode/node/problem"
)

// errNoDaemon says that no daemon answers for the data directory.
var errNoDaemon = errors.New("no mimnode daemon is running")

// client talks to a running daemon through DATA/api and DATA/api.token.
type client struct {
	base  string
	token string
	http  *http.Client
}

func (g *globals) client() (*client, error) {
	dir, err := g.dataDir()
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, node.APIFile))
	if errors.Is(err, os.ErrNotExist) {
		if _, cerr := os.Stat(filepath.Join(dir, node.ConfigFile)); errors.Is(cerr, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s is not a node's data directory (it has no %s): name one with --data, or make one with 'mimnode init --data %s'",
				errNoDaemon, dir, node.ConfigFile, dir)
		}
		return nil, fmt.Errorf("%w for %s (start one with 'mimnode run --data %s')", errNoDaemon, dir, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("read API address: %w", err)
	}
	base := strings.TrimSpace(string(b))
	// A copy of a running node's directory has its api and token files
	// too: without this check the copy's commands went to the original.
	// (A lock that cannot be checked, say for want of permission, leaves
	// the token check below to the daemon.)
	if running, err := node.Running(dir); err == nil && !running {
		return nil, fmt.Errorf("%w for %s: its api file names %s, but no daemon holds this directory (a copy of another node's data directory, or a daemon that stopped without cleaning up); start one with 'mimnode run --data %s'",
			errNoDaemon, dir, base, dir)
	}
	tok, _ := node.ReadToken(dir)
	return &client{
		base:  base,
		token: tok,
		http:  &http.Client{Timeout: 60 * time.Second},
	}, nil
}

// do sends a request with an optional JSON body and decodes a JSON answer
// into out. A problem-details answer becomes an error with its detail.
func (c *client) do(ctx context.Context, method, path string, body, out any) error {
	var raw []byte
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		raw = b
	}
	return c.doRaw(ctx, method, path, "application/json", raw, out)
}

// doRaw sends body as is with the given content type.
func (c *client) doRaw(ctx context.Context, method, path, contentType string, body []byte, out any) error {
	if body == nil {
		return c.send(ctx, method, path, "", nil, out)
	}
	return c.send(ctx, method, path, contentType, bytes.NewReader(body), out)
}

// send streams body (nil: none) with the given content type and decodes
// the answer as do does.
func (c *client) send(ctx context.Context, method, path, contentType string, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	c.authorize(req)
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("%w at %s (a daemon stopped without cleaning up? start one with 'mimnode run')", errNoDaemon, c.base)
		}
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var p problem.Details
		if json.Unmarshal(data, &p) == nil && p.Title != "" {
			if p.Detail != "" {
				return fmt.Errorf("%s: %s", p.Title, p.Detail)
			}
			return errors.New(p.Title)
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
		if h, ok := out.(headerReader); ok {
			h.readHeader(resp.Header)
		}
	}
	return nil
}

// headerReader is an answer that also takes what the response's header
// says.
type headerReader interface{ readHeader(http.Header) }

// call finds the running daemon and makes one API call (see client.do).
func (g *globals) call(ctx context.Context, method, path string, body, out any) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	return c.do(ctx, method, path, body, out)
}

// authorize adds the data directory's API token to req: as the bearer
// token (needed when the API listens beyond loopback) and in
// Mimnode-Node-Token, so that a daemon of another data directory refuses
// the request (a stale DATA/api).
func (c *client) authorize(req *http.Request) {
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
		req.Header.Set(api.NodeTokenHeader, c.token)
	}
}
