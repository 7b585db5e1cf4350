package transfer_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mimnode/mimnode/node/transfer"
	dsp "github.com/mimnode/mimnode/protocol/transfer"
)

func TestHTTPRoutes(t *testing.T) {
	prov, cons := pair(t)
	upsert(t, prov.n, entities(t, 100, 0))
	a, b := agreementFile(t, prov, cons, readOffer(datasetID, prov.id(), ""), nil)
	prov.shelf.put(a.ID, b)
	cons.shelf.put(a.ID, b)
	mux := http.NewServeMux()
	cons.svc.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	t.Run("fetch streams progress then the outcome", func(t *testing.T) {
		resp, err := http.Post(srv.URL+"/api/v1/transfers", "application/json", strings.NewReader(`{"agreement":"`+a.ID+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "application/x-ndjson" {
			t.Fatalf("POST /api/v1/transfers = %s %s, want 200 application/x-ndjson", resp.Status, ct)
		}
		var events []transfer.Event
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			// Members are named as everywhere else in the API.
			if strings.Contains(sc.Text(), `"progress"`) && !strings.Contains(sc.Text(), `"totalEntities"`) {
				t.Errorf("progress event %s does not name totalEntities", sc.Text())
			}
			var ev transfer.Event
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Fatalf("event %q: %v", sc.Text(), err)
			}
			events = append(events, ev)
		}
		last := events[len(events)-1]
		if len(events) < 2 || events[0].Progress == nil || last.Done == nil || last.Done.State != dsp.Completed || last.Done.Usage.Entities != 100 {
			t.Fatalf("events = %d, first %+v, last %+v; want progress first and a COMPLETED transfer of 100 entities last", len(events), events[0], last)
		}
	})
	cases := []struct {
		name, method, path, body string
		want                     int
	}{
		{"list", "GET", "/api/v1/transfers", "", 200},
		{"unknown transfer", "GET", "/api/v1/transfers/urn:uuid:nope", "", 404},
		{"fetch without agreement", "POST", "/api/v1/transfers", `{}`, 400},
		{"fetch with unknown field", "POST", "/api/v1/transfers", `{"agreement":"x","bogus":1}`, 400},
		{"suspend unknown", "POST", "/api/v1/transfers/urn:uuid:nope/suspend", "", 404},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Errorf("%s %s = %d, want %d", c.method, c.path, resp.StatusCode, c.want)
			}
		})
	}
	t.Run("terminate a completed transfer conflicts", func(t *testing.T) {
		l, _ := cons.svc.List()
		resp, err := http.Post(srv.URL+"/api/v1/transfers/"+l[0].ID+"/terminate", "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 409 {
			t.Errorf("terminate COMPLETED transfer = %d, want 409", resp.StatusCode)
		}
	})
}
