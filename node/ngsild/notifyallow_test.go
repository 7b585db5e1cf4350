package ngsild

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestParseNotifyAllow(t *testing.T) {
	for _, tc := range []struct {
		entry string
		ok    bool
	}{
		{"127.0.0.0/8", true},
		{"::1/128", true},
		{"192.0.2.7", true},
		{"https://*.city.example", true},
		{"receiver.city.example:8443", true},
		{"http://receiver.lan/", true},
		{"", false},
		{"ftp://x.example", false},
		{"https://x.example:0", false},
		{"https://x.example:http", false},
		{"https://x.*.example", false},
		{"http://10.0.0.1:80", false},
		{"https://x.example/path", false},
		{"user@x.example", false},
	} {
		_, err := ParseNotifyAllow([]string{tc.entry})
		if (err == nil) != tc.ok {
			t.Errorf("ParseNotifyAllow(%q) = %v, want ok=%v", tc.entry, err, tc.ok)
		}
	}
}

// TestNotifyAllowCheck checks which endpoints an allowlist admits when a
// subscription is made (no delivery).
func TestNotifyAllowCheck(t *testing.T) {
	a, err := ParseNotifyAllow([]string{"127.0.0.0/8", "https://*.city.example", "http://sensors.lan:8080"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		uri string
		ok  bool
	}{
		{"http://127.0.0.1:9000/notify", true},
		{"http://localhost:9000/notify", true}, // resolves into 127.0.0.0/8
		{"https://a.city.example/n", true},
		{"https://a.b.city.example:8443/n", true},
		{"http://a.city.example/n", false}, // https only
		{"https://city.example/n", false},  // subdomains only
		{"https://evilcity.example/n", false},
		{"http://sensors.lan:8080/n", true},
		{"http://sensors.lan/n", false}, // port 80, not 8080
		{"http://10.1.2.3/n", false},
		{"http://169.254.169.254/latest/meta-data", false},
		{"http://[::1]:9000/n", false},
	} {
		err := a.Check(t.Context(), tc.uri)
		if (err == nil) != tc.ok {
			t.Errorf("Check(%q) = %v, want ok=%v", tc.uri, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrEndpointNotAllowed) {
			t.Errorf("Check(%q) = %v, not ErrEndpointNotAllowed", tc.uri, err)
		}
	}
}

// TestSubscriptionEndpointAllowlist checks the allowlist through the API:
// forbidden endpoints are refused at create and update with BadRequestData
// naming them, and an endpoint admitted by name but resolving to a
// forbidden address is refused when it is notified.
func TestSubscriptionEndpointAllowlist(t *testing.T) {
	rcv := newReceiver(t)
	port := strings.TrimPrefix(rcv.srv.URL, "http://127.0.0.1:")
	n := startedNode(t, nil, func(o *Options) {
		o.Notify.Allow = []string{"127.0.0.0/8", "localhost:" + port}
		o.Notify.Retries = -1
	})
	sub := func(uri string) map[string]any {
		return map[string]any{"type": "Subscription", "entities": []any{map[string]any{"type": "Sensor"}},
			"notification": map[string]any{"endpoint": map[string]any{"uri": uri}}}
	}
	for _, uri := range []string{"http://10.0.0.5:8080/notify", "http://169.254.169.254/latest/meta-data/", "http://[::1]:" + port + "/"} {
		rec := n.do("POST", "/ngsi-ld/v1/subscriptions", sub(uri))
		wantProblem(t, rec, BadRequestData)
		if !strings.Contains(rec.Body.String(), uri) {
			t.Errorf("refusal of %s does not name it: %s", uri, rec.Body.String())
		}
	}
	id := subscribe(t, n, sub(rcv.srv.URL))
	rec := n.do("PATCH", "/ngsi-ld/v1/subscriptions/"+id, map[string]any{
		"notification": map[string]any{"endpoint": map[string]any{"uri": "http://10.0.0.5/"}}})
	wantProblem(t, rec, BadRequestData)
	if !strings.Contains(rec.Body.String(), "http://10.0.0.5/") {
		t.Errorf("refused update does not name the endpoint: %s", rec.Body.String())
	}

	// "localhost:PORT" is admitted by name, so creating it succeeds; but a
	// name rule only admits public addresses unless a range lists them,
	// and the node is now told to list none: localhost resolves to
	// loopback, so delivery is refused after resolution and the receiver
	// sees nothing.
	n2 := startedNode(t, nil, func(o *Options) {
		o.Notify.Allow = []string{"localhost:" + port}
		o.Notify.Retries = -1
	})
	u, _ := url.Parse(rcv.srv.URL)
	u.Host = "localhost:" + port
	id2 := subscribe(t, n2, sub(u.String()))
	wantStatus(t, n2.do("POST", "/ngsi-ld/v1/entities", map[string]any{"id": "urn:ngsi-ld:Sensor:s", "type": "Sensor"}), http.StatusCreated)
	nd := waitStatus(t, n2, id2, func(nd map[string]any) bool { return nd["status"] == "failed" })
	if nd["timesSent"] != 1.0 || nd["timesFailed"] != 1.0 || rcv.calls.Load() != 0 {
		t.Fatalf("a name resolving to loopback was notified: status %v, %d calls", nd, rcv.calls.Load())
	}
}
