package testnet

import (
	"context"
	"fmt"
	"strings"

	"github.com/mimnode/mimnode/catalog"
)

// themes maps an agency kind to its DCAT-AP theme.
var themes = map[string]string{"environment": "ENVI", "transport": "TRAN", "parking": "TRAN", "utilities": "GOVE"}

// DatasetID is the id Publish gives member m's dataset of model.
func DatasetID(m *Member, model string) string {
	return "urn:mim:dataset:" + strings.ReplaceAll(strings.ToLower(m.Name), " ", "-") + ":" + strings.ToLower(model)
}

// Publish makes every agency publish one dataset per model it holds: an
// NGSI-LD view of its seeded entities (by full type IRI, as the store holds
// them). Environment data
// is offered as open data, everything else for research only.
func (n *Net) Publish() *Net {
	if n.tb != nil {
		n.tb.Helper()
	}
	n.fail(n.publish(context.Background()))
	return n
}

func (n *Net) publish(ctx context.Context) error {
	for _, m := range n.Agencies() {
		city := cities[0]
		for _, c := range cities {
			if c.Name == m.City {
				city = c
			}
		}
		for _, model := range ModelsOf(m.Kind) {
			tpl := "research-only"
			if m.Kind == "environment" {
				tpl = "open-data"
			}
			doc := fmt.Sprintf(`{
  "id": %q,
  "title": "%s observations, %s",
  "description": "Real-time %s data of %s, as NGSI-LD entities (Smart Data Models).",
  "keywords": [%q, %q, %q],
  "themes": [%q],
  "entityTypes": [%q],
  "spatial": {"type": "Polygon", "coordinates": [[[%g,%g],[%g,%g],[%g,%g],[%g,%g],[%g,%g]]]},
  "license": "CC-BY-4.0",
  "offers": [{"template": %q}],
  "dissemination": "federation",
  "source": {"view": {"entityTypes": [%q]}}
}`, DatasetID(m, model), model, m.City, model, m.City, strings.ToLower(model), m.City, m.Kind, themes[m.Kind], TypeIRI(model),
				city.MinLon, city.MinLat, city.MaxLon, city.MinLat, city.MaxLon, city.MaxLat, city.MinLon, city.MaxLat, city.MinLon, city.MinLat,
				tpl, TypeIRI(model))
			d, err := catalog.ParseDataset([]byte(doc), "json")
			if err != nil {
				return fmt.Errorf("dataset %s: %w", DatasetID(m, model), err)
			}
			if _, err := m.Node().Catalog().Publish(ctx, d); err != nil {
				return fmt.Errorf("publish %s: %w", d.ID, err)
			}
		}
	}
	return nil
}
