package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mimnode/mimnode/catalog"
	"github.com/mimnode/mimnode/node/catalogsvc"
)

// TestAddFileAcrossDaemons: a city admin adds a CSV to a dataset with the
// CLI; bad paths are refused with a clear error; the file is listed in
// the DCAT record and in catalog.jsonld, survives a restart of the daemon,
// and a peer that agreed to use the dataset receives a byte-identical copy
// in its data directory.
func TestAddFileAcrossDaemons(t *testing.T) {
	env, lab := initDir(t), initDir(t)
	envd := startDaemon(t, env)
	startDaemon(t, lab)
	if _, _, err := cli(t, "federation", "create", "Aarhus region", "--data", env); err != nil {
		t.Fatal(err)
	}
	out, _, err := cli(t, "federation", "invite", statusOf(t, lab)["peerId"].(string), "--role", "researcher", "--data", env, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var inv struct{ Token string }
	json.Unmarshal([]byte(out), &inv)
	if _, _, err := cli(t, "federation", "join", inv.Token, "--data", lab); err != nil {
		t.Fatal(err)
	}
	id := "urn:mim:dataset:aarhus:stations"
	desc := filepath.Join(t.TempDir(), "stations.json")
	os.WriteFile(desc, []byte(`{"id": "`+id+`", "title": "Monitoring stations, Aarhus",
		"description": "Where the city's air quality stations are.", "keywords": ["stations"],
		"license": "CC-BY-4.0", "offers": [{"template": "research-only"}]}`), 0o644)
	if out, _, err := cli(t, "dataset", "publish", desc, "--data", env); err != nil {
		t.Fatalf("publish: %v %s", err, out)
	}

	// What a person can get wrong, each said plainly.
	dir := t.TempDir()
	locked := filepath.Join(dir, "locked.csv")
	os.WriteFile(locked, []byte("x"), 0o000)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{id, filepath.Join(dir, "missing.csv")}, "no such file"},
		{[]string{id, dir}, "is a directory"},
		{[]string{"urn:mim:dataset:aarhus:nope", desc}, "No such dataset"},
		{[]string{id, desc, "--name", "../up.csv"}, "not a plain file name"},
		{[]string{id, desc, "--media-type", "not a type"}, "media type"},
	} {
		if _, _, err := cli(t, append(append([]string{"dataset", "add-file"}, c.args...), "--data", env)...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("add-file %v: %v, want an error saying %q", c.args, err, c.want)
		}
	}
	if os.Geteuid() != 0 {
		if _, _, err := cli(t, "dataset", "add-file", id, locked, "--data", env); err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("add-file of an unreadable file: %v, want permission denied", err)
		}
	}

	csv := filepath.Join(dir, "stations.csv")
	data := stationsCSV(2 << 20)
	os.WriteFile(csv, data, 0o644)
	out, _, err = cli(t, "dataset", "add-file", id, csv, "--data", env, "--json")
	if err != nil {
		t.Fatalf("add-file: %v", err)
	}
	var added catalogsvc.FileAdded
	if err := json.Unmarshal([]byte(out), &added); err != nil {
		t.Fatal(err)
	}
	f := added.File
	if f.Name != "stations.csv" || f.MediaType != "text/csv" || f.Size != int64(len(data)) || len(f.SHA256) != 64 || added.Record.Dataset.Version == "" {
		t.Fatalf("add-file answered %+v, version %q", f, added.Record.Dataset.Version)
	}
	// The source file may change or go: the node serves what was added.
	os.Remove(csv)

	jsonld := func() string {
		b, _ := os.ReadFile(filepath.Join(env, "api"))
		resp, err := http.Get(strings.TrimSpace(string(b)) + "/api/v1/catalog.jsonld")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	for _, want := range []string{`"dct:title": "stations.csv"`, `"dcat:byteSize"`, f.SHA256, "media-types/text/csv"} {
		if doc := jsonld(); !strings.Contains(doc, want) {
			t.Errorf("catalog.jsonld lacks %s", want)
		}
	}

	// The lab finds the dataset, agrees to use it and fetches the file.
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, _, err = cli(t, "dataset", "files", id, "--data", lab)
		if err == nil && strings.Contains(out, "stations.csv") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lab never saw the dataset's file: %q, %v", out, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	out, _, err = cli(t, "contract", "request", id, "--purpose", "research", "--wait", "--data", lab)
	if err != nil || !strings.HasPrefix(out, "agreement ") {
		t.Fatalf("contract request: %q, %v", out, err)
	}
	agreement := strings.TrimSpace(strings.TrimPrefix(out, "agreement "))
	if out, _, err := cli(t, "fetch", agreement, "--data", lab); err != nil {
		t.Fatalf("fetch: %v\n%s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(lab, "received", url.PathEscape(id), added.Record.Dataset.Version, "stations.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("the lab's copy differs from the file added (%d bytes, want %d)", len(got), len(data))
	}

	// A restart keeps the file and the version.
	envd.kill()
	startDaemon(t, env)
	out, _, err = cli(t, "dataset", "files", id, "--data", env)
	if err != nil || !strings.Contains(out, "stations.csv") || !strings.Contains(out, f.SHA256) {
		t.Fatalf("dataset files after restart: %q, %v", out, err)
	}

	if out, _, err := cli(t, "dataset", "show", id, "--data", env); err != nil || !strings.Contains(out, added.Record.Dataset.Version) {
		t.Errorf("dataset show after restart: %q, %v; want version %s", out, err, added.Record.Dataset.Version)
	}
	// Building the version again on demand gives the same one.
	if out, _, err := cli(t, "dataset", "version", id, "--data", env); err != nil || !strings.Contains(out, added.Record.Dataset.Version) {
		t.Errorf("dataset version of a file dataset: %q, %v; want version %s", out, err, added.Record.Dataset.Version)
	}

	// Removing the file makes a new version without it.
	out, _, err = cli(t, "dataset", "rm-file", id, "stations.csv", "--data", env, "--json")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := cli(t, "dataset", "rm-file", id, "stations.csv", "--data", env); err == nil || !strings.HasPrefix(err.Error(), "No such file:") {
		t.Errorf("removing the file twice: %v, want No such file", err)
	}
	var rec catalog.Record
	json.Unmarshal([]byte(out), &rec)
	if rec.Dataset.Source != nil || rec.Dataset.Version != "" {
		t.Errorf("after rm-file the dataset has source %+v, version %q; want neither", rec.Dataset.Source, rec.Dataset.Version)
	}
	if _, _, err := cli(t, "dataset", "version", id, "--data", env); err == nil || !strings.Contains(err.Error(), "neither a view") {
		t.Errorf("dataset version with no data: %v, want an error saying it has neither a view nor files", err)
	}
}

// stationsCSV is a CSV of about n bytes.
func stationsCSV(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	b.WriteString("station,lat,lon,no2\n")
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "AARHUS-%05d,%.5f,%.5f,%d\n", i, 56+r.Float64()/4, 10+r.Float64()/3, r.IntN(200))
	}
	return b.Bytes()
}

// BenchmarkAddFile100MB measures `mimnode dataset add-file` end to end: the
// CLI streams a new 100 MB file to a running daemon, which stores it as
// blocks, builds the version and republishes the dataset. MB/s is over the
// file's bytes.
func BenchmarkAddFile100MB(b *testing.B) {
	dir := initDir(b)
	startDaemon(b, dir)
	run := func(args ...string) string {
		var out, errb bytes.Buffer
		if err := run(context.Background(), append(args, "--data", dir), &out, &errb); err != nil {
			b.Fatalf("%v: %v %s", args, err, errb.String())
		}
		return out.String()
	}
	run("federation", "create", "Bench")
	desc := filepath.Join(b.TempDir(), "big.json")
	os.WriteFile(desc, []byte(`{"id": "urn:mim:dataset:bench:big", "title": "Big", "license": "CC-BY-4.0", "offers": [{"template": "open-data"}]}`), 0o644)
	run("dataset", "publish", desc)
	file := filepath.Join(b.TempDir(), "big.bin")
	r := rand.New(rand.NewPCG(3, 4))
	data := make([]byte, 100<<20)
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		for j := 0; j < len(data); j += 8 {
			v := r.Uint64()
			for k := range 8 {
				data[j+k] = byte(v >> (8 * k))
			}
		}
		if err := os.WriteFile(file, data, 0o644); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		run("dataset", "add-file", "urn:mim:dataset:bench:big", file)
	}
}
