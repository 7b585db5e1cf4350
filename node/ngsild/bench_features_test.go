package ngsild

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"testing"
)

// BenchmarkFeatures100k measures the 1.8 query features over 100,000
// AirQualityObserved-shaped entities, each with one of 21 district scopes
// and one of 300 station scopes, beside the plain type+q query of
// BenchmarkQuery100k as the baseline of the same run.
func BenchmarkFeatures100k(b *testing.B) {
	const total = 100_000
	n, _ := load(b, 0)
	rng := rand.New(rand.NewPCG(5, 5))
	for start := 0; start < total; start += 1000 {
		batch := make([]any, 0, 1000)
		for i := start; i < start+1000; i++ {
			e := aqoEntity(rng, i)
			e["scope"] = fmt.Sprintf("/Madrid/District%02d/Station%03d", i%21, i%300)
			batch = append(batch, e)
		}
		body, _ := json.Marshal(batch)
		if rec := n.do("POST", "/ngsi-ld/v1/entityOperations/upsert", body, link(envContext)...); rec.Code != http.StatusCreated {
			b.Fatalf("load: %d %s", rec.Code, rec.Body.String())
		}
	}
	typeQ := func(types string) func(int) string {
		return func(i int) string {
			q := fmt.Sprintf("no2==%d;airQualityLevel==\"moderate\"", i%200)
			return "/ngsi-ld/v1/entities?type=" + url.QueryEscape(types) + "&q=" + url.QueryEscape(q)
		}
	}
	b.Run("baseline-type+q", func(b *testing.B) { benchQueries(b, n, typeQ("AirQualityObserved")) })
	b.Run("typeselection+q", func(b *testing.B) {
		benchQueries(b, n, typeQ("(AirQualityObserved|WeatherObserved);AirQualityObserved"))
	})
	b.Run("type+q+pick", func(b *testing.B) {
		benchQueries(b, n, func(i int) string { return typeQ("AirQualityObserved")(i) + "&pick=id,no2" })
	})
	b.Run("type+scopeQ-district", func(b *testing.B) {
		benchQueries(b, n, func(i int) string {
			return fmt.Sprintf("/ngsi-ld/v1/entities?type=AirQualityObserved&scopeQ=/Madrid/District%02d/%%23", i%21)
		})
	})
	b.Run("scopeQ-station", func(b *testing.B) {
		benchQueries(b, n, func(i int) string {
			return fmt.Sprintf("/ngsi-ld/v1/entities?scopeQ=/Madrid/%%2B/Station%03d", i%300)
		})
	})
}
