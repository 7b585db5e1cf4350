package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
)

func apiURL(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "api"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestAcknowledgedWritesSurviveKill9 kills the daemon right after it
// acknowledged writes and checks every one of them is there after restart.
func TestAcknowledgedWritesSurviveKill9(t *testing.T) {
	dir := initDir(t)
	d := startDaemon(t, dir)
	base := apiURL(t, dir)
	tmpl := weatherExample(t)
	var batch []map[string]any
	for i := 0; i < 200; i++ {
		e := map[string]any{}
		for k, v := range tmpl {
			e[k] = v
		}
		e["id"] = fmt.Sprintf("urn:ngsi-ld:WeatherObserved:kill9-%03d", i)
		batch = append(batch, e)
	}
	body, _ := json.Marshal(batch)
	resp, err := http.Post(base+"/ngsi-ld/v1/entityOperations/upsert", "application/ld+json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 && resp.StatusCode != 204 {
		t.Fatalf("batch upsert = %d %.300s", resp.StatusCode, msg)
	}
	last := map[string]any{}
	for k, v := range tmpl {
		last[k] = v
	}
	last["id"] = "urn:ngsi-ld:WeatherObserved:kill9-last"
	single, _ := json.Marshal(last)
	resp, err = http.Post(base+"/ngsi-ld/v1/entities", "application/ld+json", bytes.NewReader(single))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("create = %d", resp.StatusCode)
	}
	// SIGKILL right after the last reply: no clean shutdown, no flush.
	d.cmd.Process.Kill()
	<-d.done
	d.cmd.ProcessState = &os.ProcessState{}
	os.Remove(filepath.Join(dir, "api"))
	startDaemon(t, dir)
	base = apiURL(t, dir)
	for _, id := range []string{"urn:ngsi-ld:WeatherObserved:kill9-000", "urn:ngsi-ld:WeatherObserved:kill9-199", "urn:ngsi-ld:WeatherObserved:kill9-last"} {
		resp, err := http.Get(base + "/ngsi-ld/v1/entities/" + id)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("after kill -9: GET %s = %d, want 200", id, resp.StatusCode)
		}
	}
	req, _ := http.NewRequest("GET", base+"/ngsi-ld/v1/entities?type=WeatherObserved&count=true&limit=1", nil)
	req.Header.Set("Link", `<https://raw.githubusercontent.com/smart-data-models/dataModel.Weather/master/context.jsonld>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"`)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("NGSILD-Results-Count"); got != "201" {
		t.Errorf("after kill -9: %s WeatherObserved entities, want 201", got)
	}
}

func TestContextAdd(t *testing.T) {
	dir := initDir(t)
	startDaemon(t, dir)
	file := filepath.Join(t.TempDir(), "ctx.jsonld")
	os.WriteFile(file, []byte(`{"@context":{"speed":"https://example.org/city/speed"}}`), 0o644)
	if _, _, err := cli(t, "context", "add", "https://example.org/city/context.jsonld", file, "--data", dir); err != nil {
		t.Fatalf("context add: %v", err)
	}
	out, _, err := cli(t, "context", "list", "--data", dir)
	if err != nil || !regexp.MustCompile(`(?m)^Cached +\d{4}-\d\d-\d\dT\S+  https://example.org/city/context.jsonld$`).MatchString(out) {
		t.Fatalf("context list = %q, %v; want the added context as Cached with the time it was stored", out, err)
	}
	os.WriteFile(file, []byte(`not json`), 0o644)
	if _, _, err := cli(t, "context", "add", "https://example.org/bad.jsonld", file, "--data", dir); err == nil {
		t.Fatal("context add accepted a file that is not JSON")
	}

	// Reload from a server on loopback, then when it fails (the copy
	// stays); remove, then remove what is gone.
	var doc atomic.Value
	doc.Store(`{"@context":{"speed":"https://example.org/v2/speed"}}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d := doc.Load().(string); d != "" {
			w.Write([]byte(d))
			return
		}
		http.Error(w, "gone", http.StatusNotFound)
	}))
	defer srv.Close()
	u := srv.URL + "/ctx.jsonld"
	if err := os.WriteFile(file, []byte(`{"@context":{"speed":"https://example.org/v1/speed"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cli(t, "context", "add", u, file, "--data", dir); err != nil {
		t.Fatalf("context add: %v", err)
	}
	if out, _, err := cli(t, "context", "reload", u, "--data", dir); err != nil || !strings.Contains(out, "reloaded "+u) {
		t.Fatalf("context reload = %q, %v", out, err)
	}
	served := func() string {
		resp, err := http.Get(apiURL(t, dir) + "/ngsi-ld/v1/jsonldContexts/" + url.PathEscape(u))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if got := served(); !strings.Contains(got, "v2/speed") {
		t.Fatalf("after reload the node serves %s", got)
	}
	doc.Store("")
	if _, _, err := cli(t, "context", "reload", u, "--data", dir); err == nil || !strings.Contains(err.Error(), "copy is kept") {
		t.Fatalf("reload from a URL that answers 404: %v; want a failure saying the copy is kept", err)
	}
	if got := served(); !strings.Contains(got, "v2/speed") {
		t.Fatalf("after a failed reload the node serves %s", got)
	}
	if out, _, err := cli(t, "context", "remove", u, "--data", dir); err != nil || !strings.Contains(out, "removed "+u) {
		t.Fatalf("context remove = %q, %v", out, err)
	}
	if out, _, _ := cli(t, "context", "list", "--data", dir); strings.Contains(out, u) {
		t.Fatalf("removed context still listed: %q", out)
	}
	if _, _, err := cli(t, "context", "remove", u, "--data", dir); err == nil {
		t.Fatal("removing a context the node does not hold succeeded")
	}
}

// weatherExample is the Smart Data Models WeatherObserved example, in
// normalized form, to make entities from.
func weatherExample(t *testing.T) map[string]any {
	t.Helper()
	example, err := os.ReadFile("../../node/ngsild/testdata/smart-data-models/WeatherObserved/example-normalized.jsonld")
	if err != nil {
		t.Fatal(err)
	}
	var tmpl map[string]any
	if err := json.Unmarshal(example, &tmpl); err != nil {
		t.Fatal(err)
	}
	return tmpl
}
