package testnet

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"
)

//go:embed data/*.jsonld
var seedFS embed.FS

// City is a city of the testnet with the area its agencies' data covers
// (EPSG:4326 bounding box).
type City struct {
	Name                           string
	MinLon, MinLat, MaxLon, MaxLat float64
}

// cities are real cities of OASC members, with approximate bounding boxes.
var cities = []City{
	{"Aarhus", 10.10, 56.10, 10.26, 56.20},
	{"Eindhoven", 5.40, 51.40, 5.52, 51.48},
	{"Porto", -8.69, 41.13, -8.55, 41.19},
	{"Santander", -3.88, 43.43, -3.76, 43.48},
	{"Helsinki", 24.85, 60.14, 25.05, 60.22},
	{"Valladolid", -4.78, 41.62, -4.68, 41.68},
	{"Tallinn", 24.65, 59.40, 24.85, 59.46},
	{"Ghent", 3.68, 51.02, 3.77, 51.08},
}

// Cities returns the cities a testnet can have, in order.
func Cities() []City { return append([]City(nil), cities...) }

// agencyKinds are the agencies of a city, in the order they are created.
var agencyKinds = []string{"environment", "transport", "parking", "utilities"}

// ModelsOf lists the Smart Data Models an agency of a kind holds.
func ModelsOf(kind string) []string {
	switch kind {
	case "environment":
		return []string{"AirQualityObserved", "NoiseLevelObserved", "WeatherObserved"}
	case "transport":
		return []string{"TrafficFlowObserved"}
	case "parking":
		return []string{"OffStreetParking", "ParkingSpot"}
	case "utilities":
		return []string{"WasteContainer", "Streetlight"}
	}
	return nil
}

// modelDomains names the Smart Data Models repository of each model, whose
// @context maps the short type name to https://smartdatamodels.org/<domain>/<model>.
var modelDomains = map[string]string{
	"AirQualityObserved": "dataModel.Environment", "NoiseLevelObserved": "dataModel.Environment",
	"WeatherObserved": "dataModel.Weather", "TrafficFlowObserved": "dataModel.Transportation",
	"OffStreetParking": "dataModel.Parking", "ParkingSpot": "dataModel.Parking",
	"WasteContainer": "dataModel.WasteManagement", "Streetlight": "dataModel.Streetlighting",
}

// TypeIRI is the full entity type of a seeded model, as the entities'
// @context expands it.
func TypeIRI(model string) string {
	return "https://smartdatamodels.org/" + modelDomains[model] + "/" + model
}

// EntityID is the id Seed gives the i-th entity of a model at a member.
func EntityID(model string, m *Member, i int) string {
	return fmt.Sprintf("urn:ngsi-ld:%s:%s:%03d", model, strings.ReplaceAll(strings.ToLower(m.Name), " ", "-"), i)
}

// Entities generates n entities of model for member m: the model's real
// example with a new id, a location inside m's city and scaled numeric
// values. The same seed gives the same entities.
func (n *Net) Entities(m *Member, model string, count int) ([]map[string]any, error) {
	raw, err := seedFS.ReadFile("data/" + model + ".jsonld")
	if err != nil {
		return nil, fmt.Errorf("no seed data for %s", model)
	}
	city := cities[0]
	for _, c := range cities {
		if c.Name == m.City {
			city = c
		}
	}
	r := rand.New(rand.NewPCG(n.opts.Seed, uint64(len(m.Name))*7919+uint64(len(model))))
	out := make([]map[string]any, 0, count)
	for i := 0; i < count; i++ {
		var e map[string]any
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, err
		}
		e["id"] = EntityID(model, m, i)
		lon := city.MinLon + r.Float64()*(city.MaxLon-city.MinLon)
		lat := city.MinLat + r.Float64()*(city.MaxLat-city.MinLat)
		if loc, ok := e["location"].(map[string]any); ok {
			if g, ok := loc["value"].(map[string]any); ok && g["type"] == "LineString" {
				g["coordinates"] = []any{[]any{lon, lat}, []any{lon + 0.001, lat + 0.0005}}
			} else {
				loc["value"] = map[string]any{"type": "Point", "coordinates": []any{lon, lat}}
			}
		}
		scale := 0.5 + 0.5*r.Float64() // at most 1: keeps values within the schema's maxima
		for k, v := range e {
			if p, ok := v.(map[string]any); ok && p["type"] == "Property" {
				if f, ok := p["value"].(float64); ok && f >= 10 && f == float64(int64(f)) { // measurements, not small codes like laneId
					p["value"] = float64(int64(f * scale))
				}
			}
			_ = k
		}
		out = append(out, e)
	}
	return out, nil
}

// Seed writes real Smart Data Models entities into every agency's store
// through its NGSI-LD API: EntitiesPerModel of each model its kind holds.
func (n *Net) Seed() *Net {
	if n.tb != nil {
		n.tb.Helper()
	}
	n.fail(n.seed(context.Background()))
	return n
}

func (n *Net) seed(ctx context.Context) error {
	for _, m := range n.Agencies() {
		for _, model := range ModelsOf(m.Kind) {
			ents, err := n.Entities(m, model, n.opts.EntitiesPerModel)
			if err != nil {
				return err
			}
			if err := Upsert(ctx, m.Node().APIURL(), ents); err != nil {
				return fmt.Errorf("seed %s at %s: %w", model, m.Name, err)
			}
		}
	}
	return nil
}

// Upsert posts entities to an NGSI-LD API's batch upsert, in batches of
// 1,000, and fails on anything but full success.
func Upsert(ctx context.Context, apiURL string, entities []map[string]any) error {
	client := &http.Client{Timeout: time.Minute}
	for start := 0; start < len(entities); start += 1000 {
		end := min(start+1000, len(entities))
		body, err := json.Marshal(entities[start:end])
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, "POST", apiURL+"/ngsi-ld/v1/entityOperations/upsert", bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/ld+json")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusNoContent {
			return fmt.Errorf("upsert answered %s: %s", resp.Status, msg)
		}
	}
	return nil
}
