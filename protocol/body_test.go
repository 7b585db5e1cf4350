package protocol

import (
	"encoding/json"
	"reflect"
	"testing"
)

// quickBodyTypes are the message types quickBody reads.
var quickBodyTypes = []string{TypeContractNegotiation, TypeContractNegotiationEvent, TypeContractAgreement,
	TypeContractAgreementVerification, TypeContractRequest}

// checkQuickBody fails t if quickBody reads body as a message of type typ
// other than json.Unmarshal does, and reports whether it read it.
func checkQuickBody(t *testing.T, typ string, body []byte) bool {
	t.Helper()
	quick, slow := newMessage(typ), newMessage(typ)
	if !quickBody(body, quick) {
		if !reflect.DeepEqual(quick, newMessage(typ)) {
			t.Fatalf("quickBody(%s) declined but changed the message: %+v", body, quick)
		}
		return false
	}
	if err := json.Unmarshal(body, slow); err != nil {
		t.Fatalf("quickBody read %s as %s, encoding/json refuses it: %v", body, typ, err)
	}
	if !reflect.DeepEqual(quick, slow) {
		t.Fatalf("quickBody(%s) as %s = %+v\nencoding/json reads %+v", body, typ, quick, slow)
	}
	return true
}

// TestQuickBodyIsUnmarshal: what quickBody reads, it reads as
// encoding/json does; what it might read otherwise (names in another case,
// members twice, escapes, null, numbers it does not take) it declines.
func TestQuickBodyIsUnmarshal(t *testing.T) {
	const hdr = `{"@context":["` + Context + `"],"@type":"T"`
	cases := []struct {
		name, typ, body string
		quick           bool
	}{
		{"answer", TypeContractNegotiation, hdr + `,"providerPid":"urn:p","consumerPid":"urn:c","state":"AGREED"}`, true},
		{"answer with spaces", TypeContractNegotiation, " {\n\"providerPid\" : \"urn:p\" ,\t\"state\":\"AGREED\" , \"x\" : [1,{\"state\":2}] }\n", true},
		{"empty object", TypeContractNegotiation, `{}`, true},
		{"event", TypeContractNegotiationEvent, hdr + `,"providerPid":"p","consumerPid":"c","urn:mimnode:seq":7,"eventType":"FINALIZED"}`, true},
		{"agreement", TypeContractAgreement, hdr + `,"providerPid":"p","consumerPid":"c","urn:mimnode:seq":18446744073709551615,"agreement":{"@type":"Agreement", "a" : "\u00e9\"" }}`, true},
		{"verification", TypeContractAgreementVerification, hdr + `,"providerPid":"p","consumerPid":"c","agreement":{}}`, true},
		{"request", TypeContractRequest, hdr + `,"consumerPid":"c","offer":{"@id":"o"},"callbackAddress":"/p2p/x","urn:mimnode:purpose":"research"}`, true},
		{"miscased name", TypeContractNegotiation, `{"providerPid":"p","STATE":"AGREED"}`, false},
		{"miscased and exact", TypeContractNegotiation, `{"state":"A","State":"B"}`, false},
		{"miscased seq", TypeContractAgreement, `{"URN:mimnode:seq":1}`, false},
		{"twice", TypeContractNegotiation, `{"state":"A","state":"B"}`, false},
		{"escaped value", TypeContractNegotiation, `{"state":"A\u0041"}`, false},
		{"escaped name", TypeContractNegotiation, `{"st\u0061te":"A"}`, false},
		{"non-ASCII value", TypeContractNegotiation, `{"state":"é"}`, false},
		{"non-ASCII name", TypeContractNegotiation, `{"ſtate":"A"}`, false},
		{"null string", TypeContractNegotiation, `{"state":null}`, false},
		{"number for string", TypeContractNegotiation, `{"state":1}`, false},
		{"null object", TypeContractAgreement, `{"agreement":null}`, false},
		{"array for object", TypeContractAgreement, `{"agreement":[]}`, false},
		{"string for object", TypeContractAgreement, `{"agreement":"x"}`, false},
		{"negative seq", TypeContractAgreement, `{"urn:mimnode:seq":-1}`, false},
		{"fraction seq", TypeContractAgreement, `{"urn:mimnode:seq":1.0}`, false},
		{"exponent seq", TypeContractAgreement, `{"urn:mimnode:seq":1e2}`, false},
		{"huge seq", TypeContractAgreement, `{"urn:mimnode:seq":18446744073709551616}`, false},
		{"string seq", TypeContractAgreement, `{"urn:mimnode:seq":"1"}`, false},
		{"not JSON", TypeContractNegotiation, `{"state":"A"`, false},
		{"trailing", TypeContractNegotiation, `{"state":"A"} x`, false},
		{"array", TypeContractNegotiation, `["state"]`, false},
		{"other type", TypeContractNegotiationError, `{"providerPid":"p"}`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := checkQuickBody(t, tc.typ, []byte(tc.body)); got != tc.quick {
				t.Errorf("quickBody(%s) as %s = %v, want %v", tc.body, tc.typ, got, tc.quick)
			}
		})
	}
}

// TestQuickBodyExamples: the DSP examples of the types quickBody reads
// are read by it, as encoding/json reads them.
func TestQuickBodyExamples(t *testing.T) {
	read := 0
	for _, doc := range examples(t) {
		typ, ok := quickHeader(doc)
		if !ok {
			continue
		}
		for _, q := range quickBodyTypes {
			if q == typ && checkQuickBody(t, typ, doc) {
				read++
			}
		}
	}
	if read == 0 {
		t.Error("quickBody read none of the DSP examples")
	}
	t.Logf("quickBody read %d DSP examples", read)
}

// FuzzQuickBody: for any body and any type quickBody reads, it either
// declines, leaving the message as it was, or reads what encoding/json
// reads.
func FuzzQuickBody(f *testing.F) {
	for _, doc := range examples(f) {
		f.Add(doc)
	}
	f.Add([]byte(`{"providerPid":"p","consumerPid":"c","urn:mimnode:seq":3,"state":"AGREED","eventType":"FINALIZED","agreement":{"a":[1,"}"]},"offer":{},"callbackAddress":"x","urn:mimnode:purpose":"r"}`))
	f.Add([]byte(`{"STATE":"A","Agreement":{},"urn:mimnode:SEQ":1}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, typ := range quickBodyTypes {
			checkQuickBody(t, typ, body)
		}
	})
}

// BenchmarkDecodeAnswer decodes the answer every negotiation message
// gets (a ContractNegotiation), four of them per negotiation.
func BenchmarkDecodeAnswer(b *testing.B) {
	body, err := Encode(&ContractNegotiation{Pids: Pids{ProviderPid: "urn:uuid:6f8d9d44-8026-4776-9194-1a50c77a431c",
		ConsumerPid: "urn:uuid:d9e168b5-ff23-4e93-a8ca-093c1a50dc9e"}, State: "AGREED"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(body); err != nil {
			b.Fatal(err)
		}
	}
}
