package transfer_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mimnode/mimnode/catalog"
	"github.com/mimnode/mimnode/node"
	"github.com/mimnode/mimnode/node/catalogsvc"
	"github.com/mimnode/mimnode/node/transfer"
	"github.com/mimnode/mimnode/policy"
)

// filePair is pair with a received-files directory on both nodes.
func filePair(t testing.TB) (prov, cons *peer) {
	t.Helper()
	dir := func(o *transfer.Options) { o.FilesDir = filepath.Join(t.TempDir(), "received") }
	prov = &peer{cfg: initDir(t, "Provider"), tune: dir}
	cons = &peer{cfg: initDir(t, "Consumer"), tune: func(o *transfer.Options) { consumerTune(o); dir(o) }}
	prov.start(t)
	cons.start(t)
	federate(t, []*node.Node{prov.n, cons.n})
	return prov, cons
}

// publishFiles (re)publishes the test dataset on p's catalogue with view
// (nil: files only) and the given files, stored through the service as
// add-file does, and returns the dataset.
func publishFiles(t testing.TB, p *peer, view *catalog.View, files map[string][]byte) catalog.Dataset {
	t.Helper()
	ds, err := catalog.ParseDataset([]byte(`{"id": "`+datasetID+`", "title": "Stations", "description": "Monitoring stations.",
		"entityTypes": ["AirQualityObserved"], "license": "CC-BY-4.0", "offers": [{"template": "open-data"}]}`), "json")
	if err != nil {
		t.Fatal(err)
	}
	ds.Source = &catalog.Source{View: view}
	for name, data := range files {
		f, err := p.svc.StoreFile(ctx, name, "text/csv", bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		ds.Source.Files = append(ds.Source.Files, f)
	}
	if ds.Version, err = p.svc.Build(ctx, ds); err != nil {
		t.Fatal(err)
	}
	if _, err := p.cat.Put(ds, time.Now()); err != nil {
		t.Fatal(err)
	}
	return ds
}

func randomFile(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestFileDatasetEndToEnd: a dataset with a big file and a small one and
// the entities of a view is published, negotiated and fetched; the
// consumer's files are byte-identical to the provider's, listed with
// provenance, and its entities are queryable. Changing a few bytes in the
// middle of the big file makes a new version whose fetch moves few blocks.
func TestFileDatasetEndToEnd(t *testing.T) {
	prov, cons := filePair(t)
	upsert(t, prov.n, entities(t, 40, 0))
	big := randomFile(6<<20, 1)
	small := []byte("station,lat,lon\nAarhus-1,56.15,10.2\n")
	ds := publishFiles(t, prov, &catalog.View{}, map[string][]byte{"readings.bin": big, "stations.csv": small})
	agreement := negotiate(t, prov, cons)

	first, err := cons.svc.Fetch(ctx, agreement, transfer.FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if first.Version != ds.Version {
		t.Fatalf("fetched version %s, published %s", first.Version, ds.Version)
	}
	dir := cons.svc.ReceivedDir(datasetID, first.Version)
	for name, want := range map[string][]byte{"readings.bin": big, "stations.csv": small} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("received %s differs from the published file (%d bytes, want %d)", name, len(got), len(want))
		}
	}
	var rv transfer.ReceivedVersion
	b, err := os.ReadFile(dir + ".json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rv); err != nil {
		t.Fatal(err)
	}
	if rv.Provider != prov.id() || rv.Agreement != agreement || rv.Version != first.Version || len(rv.Files) != 2 {
		t.Errorf("provenance = %+v", rv)
	}
	if got := len(query(t, cons.n)); got != 40 {
		t.Errorf("consumer holds %d entities of the view, want 40", got)
	}

	edited := bytes.Clone(big)
	copy(edited[3<<20:], "a few changed bytes")
	ds2 := publishFiles(t, prov, &catalog.View{}, map[string][]byte{"readings.bin": edited, "stations.csv": small})
	if ds2.Version == ds.Version {
		t.Fatal("editing a file kept the version")
	}
	second, err := cons.svc.Fetch(ctx, agreement, transfer.FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if second.Version != ds2.Version {
		t.Fatalf("second fetch got %s, want %s", second.Version, ds2.Version)
	}
	total := second.Usage.Blocks + second.Usage.Skipped
	if second.Usage.Blocks > 2 {
		t.Errorf("a 19-byte edit moved %d of %d blocks, want at most 2", second.Usage.Blocks, total)
	}
	got, err := os.ReadFile(filepath.Join(cons.svc.ReceivedDir(datasetID, second.Version), "readings.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, edited) {
		t.Error("the consumer's copy of the edited file differs from the provider's")
	}
	t.Logf("first fetch %d blocks, second %d of %d", first.Usage.Blocks, second.Usage.Blocks, total)
}

// TestReceivedFileNeverReserved: a file received under a policy that
// permits read but not distribute cannot be added to a dataset of the
// consumer, under any name or path; with distribute it can.
func TestReceivedFileNeverReserved(t *testing.T) {
	for _, c := range []struct {
		name    string
		actions string
		refused bool
	}{
		{"read only", `{"action": "read"}`, true},
		{"read and distribute", `{"action": "read"}, {"action": "distribute"}`, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			prov, cons := filePair(t)
			data := randomFile(300<<10, 7)
			publishFiles(t, prov, nil, map[string][]byte{"plan.pdf": data})
			in, err := cons.svc.Fetch(ctx, agreePermissions(t, prov, cons, c.actions), transfer.FetchOptions{})
			if err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(filepath.Join(cons.svc.ReceivedDir(datasetID, in.Version), "plan.pdf"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			_, err = cons.svc.StoreFile(ctx, "renamed.pdf", "application/pdf", f)
			if got := errors.Is(err, catalogsvc.ErrNotDistributable); got != c.refused {
				t.Errorf("adding the received file: err = %v, refused = %v, want %v", err, got, c.refused)
			}
		})
	}
}

// TestFileVersionSurvivesRestart: the provider keeps the file's blocks,
// not the path, so a version built before a restart is served after it,
// with the original file gone from disk.
func TestFileVersionSurvivesRestart(t *testing.T) {
	prov, cons := filePair(t)
	src := filepath.Join(t.TempDir(), "stations.csv")
	data := randomFile(2<<20, 3)
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	fh, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	f, err := prov.svc.StoreFile(ctx, "stations.csv", "text/csv", fh)
	fh.Close()
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(src)
	ds, err := catalog.ParseDataset([]byte(`{"id": "`+datasetID+`", "title": "Stations", "license": "CC-BY-4.0", "offers": [{"template": "open-data"}]}`), "json")
	if err != nil {
		t.Fatal(err)
	}
	ds.Source = &catalog.Source{Files: []catalog.File{f}}
	prov.stop()
	prov.start(t)
	if ds.Version, err = prov.svc.Build(ctx, ds); err != nil {
		t.Fatal(err)
	}
	if _, err := prov.cat.Put(ds, time.Now()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "consumer reaches the provider again", func() bool { return connect(cons, prov) == nil })
	agreement := negotiate(t, prov, cons)
	in, err := cons.svc.Fetch(ctx, agreement, transfer.FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(cons.svc.ReceivedDir(datasetID, in.Version), "stations.csv"))
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("received file after the provider's restart: %d bytes, err %v; want the original %d bytes", len(got), err, len(data))
	}
	// The transfer says where its files are.
	if in.FilesDir != cons.svc.ReceivedDir(datasetID, in.Version) {
		t.Errorf("the transfer names files dir %q, want %q", in.FilesDir, cons.svc.ReceivedDir(datasetID, in.Version))
	}
}

// TestReceivedDirNamesAreFileNames: a dataset id becomes one directory
// name, with nothing Windows refuses in a file name there.
func TestReceivedDirNamesAreFileNames(t *testing.T) {
	id := "urn:mim:dataset:aarhus:air-quality/2025"
	if got := transfer.DatasetDirName(id, "linux"); got != "urn:mim:dataset:aarhus:air-quality%2F2025" {
		t.Errorf("on Linux: %q", got)
	}
	if got := transfer.DatasetDirName(id, "windows"); got != "urn%3Amim%3Adataset%3Aaarhus%3Aair-quality%2F2025" || strings.ContainsAny(got, `:/\<>"|?*`) {
		t.Errorf("on Windows: %q, want the id with ':' and '/' escaped, nothing Windows refuses in a file name", got)
	}
}

// BenchmarkStoreFile100MB measures add-file's work on the publisher: a
// new 100 MB file cut into blocks, stored in badger with its manifest, and
// the dataset version built from it. MB/s is over the file's bytes.
func BenchmarkStoreFile100MB(b *testing.B) {
	p := &peer{cfg: initDir(b, "Provider")}
	p.start(b)
	ds, err := catalog.ParseDataset([]byte(`{"id": "`+datasetID+`", "title": "Big", "license": "CC-BY-4.0", "offers": [{"template": "open-data"}]}`), "json")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(100 << 20)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		data := randomFile(100<<20, uint64(i+100))
		b.StartTimer()
		f, err := p.svc.StoreFile(ctx, "big.bin", "application/octet-stream", bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		ds.Source = &catalog.Source{Files: []catalog.File{f}}
		if _, err := p.svc.Build(ctx, ds); err != nil {
			b.Fatal(err)
		}
	}
}

// TestReceivedFileNotPassedOnAfterItsAgreement: a file received under an
// agreement that permits distribute, valid for a day, may be added to a
// dataset of the consumer during that day, and not after it.
func TestReceivedFileNotPassedOnAfterItsAgreement(t *testing.T) {
	var skew atomic.Int64
	dir := func(o *transfer.Options) { o.FilesDir = filepath.Join(t.TempDir(), "received") }
	prov := &peer{cfg: initDir(t, "Provider"), tune: dir}
	cons := &peer{cfg: initDir(t, "Consumer"), tune: func(o *transfer.Options) {
		dir(o)
		o.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	}}
	prov.start(t)
	cons.start(t)
	federate(t, []*node.Node{prov.n, cons.n})
	publishFiles(t, prov, nil, map[string][]byte{"plan.pdf": randomFile(100<<10, 9)})
	a, b := agreementFile(t, prov, cons, `{"@context": "http://www.w3.org/ns/odrl.jsonld", "@type": "Offer", "uid": "urn:uuid:offer-files",
		"target": "`+datasetID+`", "assigner": "`+prov.id()+`", "permission": [{"action": "read"}, {"action": "distribute"}]}`,
		func(a *policy.Agreement) { a.NotAfter = time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second) })
	prov.shelf.put(a.ID, b)
	cons.shelf.put(a.ID, b)
	in, err := cons.svc.Fetch(ctx, a.ID, transfer.FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	add := func(name string) error {
		f, err := os.Open(filepath.Join(cons.svc.ReceivedDir(datasetID, in.Version), "plan.pdf"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		_, err = cons.svc.StoreFile(ctx, name, "application/pdf", f)
		return err
	}
	if err := add("during.pdf"); err != nil {
		t.Fatalf("adding the received file while its agreement holds: %v", err)
	}
	skew.Store(int64(25 * time.Hour))
	if err := add("after.pdf"); !errors.Is(err, catalogsvc.ErrNotDistributable) || !strings.Contains(err.Error(), "has ended or was revoked") {
		t.Errorf("adding the received file after its agreement ended: %v, want it refused saying so", err)
	}
}
