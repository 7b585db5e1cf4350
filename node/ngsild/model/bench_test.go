package model

import "testing"

func BenchmarkNewRegistry(b *testing.B) {
	for b.Loop() {
		if _, err := NewRegistry(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidate validates the AirQualityObserved keyValues example, the shape
// of the entities the node's batch-upsert target is measured on.
func BenchmarkValidate(b *testing.B) {
	r := registry(b)
	kv := readExample(b, "AirQualityObserved", "example.jsonld")
	b.ReportAllocs()
	for b.Loop() {
		if err := r.Validate(aqIRI, kv); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateNormalized includes the KeyValues conversion of the normalized
// example, as the node does on every write of a bound type.
func BenchmarkValidateNormalized(b *testing.B) {
	r := registry(b)
	norm := readExample(b, "ParkingSpot", "example-normalized.jsonld")
	b.ReportAllocs()
	for b.Loop() {
		if err := r.Validate(parkingIRI, KeyValues(norm)); err != nil {
			b.Fatal(err)
		}
	}
}
