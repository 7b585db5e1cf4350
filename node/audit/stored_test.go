package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/mimnode/mimnode/node/store"
)

// storedEntry and appendHead write what json.Marshal writes, or decline;
// parseHead reads what appendHead writes as json.Unmarshal would.
func TestStoredEntryIsJSONMarshal(t *testing.T) {
	at := time.Date(2026, 12, 4, 19, 0, 0, 123456789, time.UTC)
	for _, tc := range []struct {
		name string
		e    Entry
		fast bool
	}{
		{"transition", Entry{Seq: 12, Time: at, Kind: KindNegotiationTransition, Subject: "urn:uuid:a", Peer: "12D3KooWX",
			Data: json.RawMessage(canonicalCases[4].in), Prev: "5ba1", Hash: "a203"}, true},
		{"first entry, no peer, no data", Entry{Seq: 1, Time: at.Truncate(time.Second), Kind: "k", Subject: "s", Hash: "00"}, true},
		{"data out of order", Entry{Seq: 2, Time: at, Kind: "k", Subject: "s", Data: json.RawMessage(`{"b":1,"a":2}`), Prev: "01", Hash: "02"}, false},
		{"data with white space", Entry{Seq: 2, Time: at, Kind: "k", Subject: "s", Data: json.RawMessage(`{"a": 1}`), Prev: "01", Hash: "02"}, false},
		{"data json.Marshal escapes", Entry{Seq: 2, Time: at, Kind: "k", Subject: "s", Data: json.RawMessage(`{"a":"<b>&"}`), Prev: "01", Hash: "02"}, false},
		{"subject json.Marshal escapes", Entry{Seq: 2, Time: at, Kind: "k", Subject: "a&b", Prev: "01", Hash: "02"}, false},
		{"year 10000", Entry{Seq: 2, Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), Kind: "k", Subject: "s"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := storedEntry(tc.e, len(tc.e.Data) > 0 && isCanonical(tc.e.Data))
			if ok != tc.fast {
				t.Fatalf("storedEntry ok = %v, want %v", ok, tc.fast)
			}
			if !ok {
				return
			}
			want, err := json.Marshal(tc.e)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Fatalf("storedEntry = %s\nwant %s", got, want)
			}
		})
	}
	for _, h := range []head{{}, {Seq: 1, Hash: "00ff"}, {Seq: 1<<64 - 1, Hash: "a203231fe950775040fa720b3f94c5ce583c627840f924cd891fc953e5d624ff"}} {
		b := appendHead(nil, h)
		if want, _ := json.Marshal(h); string(b) != string(want) {
			t.Errorf("appendHead(%+v) = %s, want %s", h, b, want)
		}
		if got, ok := parseHead(b); !ok || got != h {
			t.Errorf("parseHead(%s) = %+v, %v, want %+v", b, got, ok, h)
		}
	}
	for _, b := range []string{`{"seq":01,"hash":"00"}`, `{"seq":1,"hash":"0G"}`, `{"seq": 1,"hash":"00"}`, `{"seq":1,"hash":"00"} `, `{"hash":"00","seq":1}`, `{"seq":99999999999999999999,"hash":""}`} {
		if h, ok := parseHead([]byte(b)); ok {
			t.Errorf("parseHead(%s) = %+v, want it left to encoding/json", b, h)
		}
	}
}

// entryKey writes the key fmt.Sprintf("%020d") gave: existing logs are
// read and appended to under the same keys.
func TestEntryKey(t *testing.T) {
	for _, seq := range []uint64{0, 1, 9, 10, 12345, 1<<53 + 1, 99999999999999999999 % (1 << 63), math.MaxUint64} {
		want := store.Key(store.PrefixAudit, "e", fmt.Sprintf("%020d", seq))
		if got := entryKey(seq); !bytes.Equal(got, want) {
			t.Errorf("entryKey(%d) = %q, want %q", seq, got, want)
		}
	}
}
