package transfer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	p2pproto "github.com/libp2p/go-libp2p/core/protocol"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mimnode/mimnode/catalog"
	"github.com/mimnode/mimnode/content"
	"github.com/mimnode/mimnode/node/audit"
	"github.com/mimnode/mimnode/node/catalogsvc"
	"github.com/mimnode/mimnode/node/contract"
	"github.com/mimnode/mimnode/node/federation"
	"github.com/mimnode/mimnode/node/ngsild"
	"github.com/mimnode/mimnode/node/store"
	"github.com/mimnode/mimnode/policy"
	"github.com/mimnode/mimnode/protocol"
	dsp "github.com/mimnode/mimnode/protocol/transfer"
)

// Sentinel errors.
var (
	// ErrRefused: the provider refused the transfer; the *RefusedError
	// wrapping it carries the code and the reasons.
	ErrRefused = errors.New("transfer refused")
	// ErrUnknownTransfer: no transfer process with that id on this node.
	ErrUnknownTransfer = errors.New("unknown transfer")
	// ErrUnknownDataset: the agreement names a dataset this node does not
	// publish, or one that is not an NGSI-LD view.
	ErrUnknownDataset = errors.New("unknown dataset")
	// ErrBadState: the transfer is not in a state that allows the action.
	ErrBadState = errors.New("transfer not in a state that allows this")
	// ErrCorruptBlock: a block kept failing verification against its CID.
	ErrCorruptBlock = errors.New("block failed verification")
	// ErrClosed: the service has been closed.
	ErrClosed = errors.New("transfer service closed")
)

// transferMetrics are the service's counters (Options.Metrics).
type transferMetrics struct {
	ended, bytes, entities *prometheus.CounterVec
}

// RefusedError is a refusal by the provider, with the protocol code and
// the reasons it gave (each failed constraint).
type RefusedError struct {
	Code    protocol.Code
	Reasons []string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("transfer refused [%s]: %v", e.Code, e.Reasons)
}

// Unwrap makes errors.Is(err, ErrRefused) hold.
func (e *RefusedError) Unwrap() error { return ErrRefused }

// Agreements is what the service needs from the contract driver: the
// canonical, doubly signed agreement file by id. node/contract.Service
// implements it; the service parses and verifies the bytes itself on every
// use, so a changed stored copy is caught.
type Agreements interface {
	Agreement(id string) ([]byte, error)
}

// Purposes tells the purpose an agreement was negotiated for, so a transfer
// is evaluated with it (a research-only agreement permits transfers for
// research); contract.Service implements it.
type Purposes interface {
	AgreedPurpose(agreementID string) string
}

// Auditor appends to the node's hash-chained log; *audit.Log implements it.
type Auditor interface {
	Append(e audit.Entry) (audit.Entry, error)
}

// Datasets resolves the dataset an agreement names to its description, on
// the provider. CatalogDatasets adapts a *catalog.Catalog.
type Datasets interface {
	Dataset(id string) (catalog.Dataset, error)
}

// Membership is what the provider needs from the federation service: the
// stream authorization table, and the consumer's federations and role for
// the policy's federation and role constraints.
type Membership interface {
	Guard(proto p2pproto.ID, h network.StreamHandler) network.StreamHandler
	SharedFederations(p peer.ID) []string
	RoleOf(fed string, p peer.ID) (federation.Role, bool)
	// IsAgency: this node is an agency in some federation. A researcher
	// node serves no data: it takes only the messages of the transfers
	// it asked for.
	IsAgency() bool
}

var (
	_ Agreements = (*contract.Service)(nil)
	_ Datasets   = PublishedDatasets{}
	_ Datasets   = CatalogDatasets{}
	_ Auditor    = (*audit.Log)(nil)
	_ Membership = (*federation.Service)(nil)
)

// CatalogDatasets serves datasets from a publisher's catalogue.
type CatalogDatasets struct{ Catalog *catalog.Catalog }

// Dataset returns the live dataset id of the catalogue.
func (c CatalogDatasets) Dataset(id string) (catalog.Dataset, error) {
	r, ok := c.Catalog.Get(id)
	if !ok || r.Retired {
		return catalog.Dataset{}, fmt.Errorf("dataset %s: %w", id, ErrUnknownDataset)
	}
	return r.Dataset, nil
}

// PublishedDatasets serves the node's own live datasets from its
// catalogue service (node.Node.Catalog()); Self is the node's peer ID, so
// that datasets of other publishers in the federated index are never
// served from here.
type PublishedDatasets struct {
	Catalog *catalogsvc.Service
	Self    string
}

// Dataset returns dataset id if this node publishes it and it is live.
func (p PublishedDatasets) Dataset(id string) (catalog.Dataset, error) {
	r, err := p.Catalog.Get(id)
	if err != nil || r.Retired || r.Publisher != p.Self {
		return catalog.Dataset{}, fmt.Errorf("dataset %s: %w", id, ErrUnknownDataset)
	}
	return r.Dataset, nil
}

// Options configure a Service. Host, Store, NGSILD, Agreements, Audit,
// Members, Datasets, Signer and Verifier are required.
type Options struct {
	// Metrics, when set, gets the service's counters
	// (mimnode_transfers_total, mimnode_transfer_bytes_total,
	// mimnode_transfer_entities_total).
	Metrics prometheus.Registerer

	Host       host.Host
	Store      *store.DB
	NGSILD     *ngsild.Service
	Agreements Agreements
	// Purposes, when set, gives the purpose each agreement was negotiated
	// for; without it transfers are evaluated with no purpose.
	Purposes Purposes
	// Revocations, when set, tells the agreements this node revoked as
	// their provider; transfers under them are refused.
	Revocations Revocations
	Audit       Auditor
	Members     Membership
	Datasets    Datasets
	Signer      policy.Signer
	Verifier    policy.Verifier
	// Described, when set, gives a dataset of another node as its provider
	// describes it in the federation's catalogue, where this node chose it
	// (ok false when this node has not indexed it). A consumer lands only
	// received entities of the entity types that description declares
	// (declared.go).
	Described func(provider, dataset string) (ds catalog.Dataset, ok bool)
	// Streams is how many block streams a snapshot pull opens in parallel
	// (default 4).
	Streams int
	// BatchBlocks is how many verified blocks one store write holds at
	// most (it also holds at most 16 MiB; writes are synced in the
	// background, several at a time), and the least number of blocks one
	// block request asks for (default 64).
	BatchBlocks int
	// PlainBlocks makes a pull ask for blocks and the manifest as they
	// are, not compressed (EncodingS2): for measuring, or a link faster
	// than the CPU compresses. A provider answers either kind of request.
	PlainBlocks bool
	// Timeout bounds one exchange or one block batch (default 30 s).
	Timeout time.Duration
	// BuildTimeout bounds the consumer's wait for the provider's start,
	// which may have to build a version of a large dataset first
	// (default 10 min).
	BuildTimeout time.Duration
	// FilesDir is where a consumer writes the files of the versions it
	// receives (DATA/received); see files.go. Empty: versions with files
	// cannot be landed.
	FilesDir string
	// NoticeRetry is how often a consumer tries again to tell a provider
	// that a transfer completed, with its receipt, when the provider could
	// not be reached at the end (default 30 s; notice.go).
	NoticeRetry time.Duration
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Service runs this node's transfers in both roles over
// /mim/transfer/1.0.0.
type Service struct {
	o    Options
	log  *slog.Logger
	self peer.ID

	ctx    context.Context // cancelled by Close; ends streams in flight
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// procMu serialises steps of one process; keyed by role/pid.
	procMu sync.Map // string -> *sync.Mutex
	// countMu serialises the provider's grant decisions, so that two
	// simultaneous requests cannot both take the last allowed transfer.
	countMu sync.Mutex

	mu      sync.Mutex
	closed  bool                          // guarded by mu
	cancels map[string]context.CancelFunc // guarded by mu; running fetches by pid
	// serving holds how to stop each data request this node is
	// answering, by agreement and a number from servingN; guarded by mu
	// (revoke.go).
	serving  map[string]map[uint64]func(*RefusedError)
	metrics  transferMetrics
	servingN uint64
	// revoked holds the agreements EndAgreements ended, with their
	// refusal reason; guarded by mu.
	revoked map[string]string
	// manifests caches decoded manifests by version; guarded by mu.
	manifests map[string]content.Manifest
	// built remembers the last version built per dataset and the change
	// feed position it was built at; guarded by mu.
	built map[string]builtVersion
	// buildMu serialises version builds (Build).
	buildMu sync.Mutex
	// landMu serialises landings, each from its ownership check to its
	// write (land.go, live.go): two datasets may hold one id.
	landMu sync.Mutex
	// expires is the first end of an agreement whose received entities
	// the running build keeps (servable); guarded by buildMu.
	expires time.Time
	// provEpoch moves before and after every provenance write of this
	// node (landing, live changes): a version built while it stood still
	// saw every entity's provenance as it still is, so a later build may
	// start from it (rebuild.go).
	provEpoch atomic.Uint64

	// corrupt, set by tests only (export_test.go), garbles the first
	// delivery of the named blocks on the provider side.
	corrupt sync.Map // string CID -> struct{}
	// purposes caches the purpose each agreement was negotiated for (it
	// never changes), so data requests do not look it up every time.
	purposes sync.Map // agreement id -> string
}

// New checks the options and returns a Service; Start registers its
// stream handler.
func New(o Options) (*Service, error) {
	if o.Host == nil || o.Store == nil || o.NGSILD == nil || o.Agreements == nil || o.Audit == nil ||
		o.Members == nil || o.Datasets == nil || o.Signer == nil || o.Verifier == nil {
		return nil, errors.New("transfer: Host, Store, NGSILD, Agreements, Audit, Members, Datasets, Signer and Verifier are required")
	}
	if o.Streams <= 0 {
		o.Streams = 4
	}
	if o.BatchBlocks <= 0 {
		o.BatchBlocks = 64
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.NoticeRetry <= 0 {
		o.NoticeRetry = 30 * time.Second
	}
	if o.BuildTimeout <= 0 {
		o.BuildTimeout = 10 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	m := transferMetrics{
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mimnode_transfers_total", Help: "Transfers ended here, by this node's role and outcome (completed, terminated).",
		}, []string{"role", "outcome"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mimnode_transfer_bytes_total", Help: "Bytes moved over the wire by completed transfers, by this node's role.",
		}, []string{"role"}),
		entities: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mimnode_transfer_entities_total", Help: "Entities landed (consumer) or sent (provider) by completed transfers, by this node's role.",
		}, []string{"role"}),
	}
	if o.Metrics != nil {
		for _, c := range []prometheus.Collector{m.ended, m.bytes, m.entities} {
			if err := o.Metrics.Register(c); err != nil {
				return nil, fmt.Errorf("transfer: %w", err)
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Service{metrics: m, o: o, log: o.Logger.With("component", "transfer"), self: o.Host.ID(),
		ctx: ctx, cancel: cancel, cancels: map[string]context.CancelFunc{},
		manifests: map[string]content.Manifest{}, built: map[string]builtVersion{}}, nil
}

// Start registers the /mim/transfer/1.0.0 handler behind the federation
// guard (members only; researchers never serve).
func (s *Service) Start(context.Context) error {
	s.o.Host.SetStreamHandler(p2pproto.ID(protocol.TransferProtocol),
		s.o.Members.Guard(p2pproto.ID(protocol.TransferProtocol), s.handleStream))
	if s.enter() {
		go func() {
			defer s.wg.Done()
			s.noticeLoop() // notice.go
		}()
	}
	return nil
}

// Close removes the handler and ends transfers in flight; their state is
// on disk and a later Fetch resumes them.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.o.Host.RemoveStreamHandler(p2pproto.ID(protocol.TransferProtocol))
	s.cancel()
	s.wg.Wait()
	return nil
}

func (s *Service) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// bind ends ctx when the service closes too, so Close never waits for a
// caller's long fetch or live feed.
func (s *Service) bind(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.ctx, cancel)
	return ctx, func() { stop(); cancel() }
}

func (s *Service) lockProc(role dsp.Role, pid string) func() {
	m, _ := s.procMu.LoadOrStore(string(role)+" "+pid, new(sync.Mutex))
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// heldAgreement is agreement for a fetch this node asked for: an id it
// does not hold gets what to do (a dataset id where an agreement id
// belongs is the usual slip).
func (s *Service) heldAgreement(id string) (policy.Agreement, error) {
	a, err := s.agreement(id)
	if errors.Is(err, contract.ErrUnknownAgreement) {
		return a, fmt.Errorf("%w: fetch takes an agreement id, as 'mimnode agreement list' shows; for a dataset, first ask for an agreement with 'mimnode contract request DATASET-ID --wait'", err)
	}
	return a, err
}

// agreement reads, parses and verifies agreement id: both signatures, by
// the peers named for each role.
func (s *Service) agreement(id string) (policy.Agreement, error) {
	b, err := s.o.Agreements.Agreement(id)
	if err != nil {
		return policy.Agreement{}, err
	}
	a, err := policy.ParseAgreement(b)
	if err != nil {
		return policy.Agreement{}, fmt.Errorf("parsing agreement %s: %w", id, err)
	}
	if err := a.Verify(s.o.Verifier); err != nil {
		return policy.Agreement{}, fmt.Errorf("verifying agreement %s: %w", id, err)
	}
	return a, nil
}

func (s *Service) auditf(kind, subject, peerID string, data any) {
	var raw json.RawMessage
	if data != nil {
		b, err := json.Marshal(data)
		if err == nil {
			raw = b
		}
	}
	if _, err := s.o.Audit.Append(audit.Entry{Time: s.o.Now().UTC(), Kind: kind, Subject: subject, Peer: peerID, Data: raw}); err != nil {
		s.log.Error("audit append", "kind", kind, "subject", subject, "err", err)
	}
}

// Audit kinds this package writes.
const (
	KindTransition = "transfer.transition"
	KindRefused    = "transfer.refused"
	KindReceipt    = "transfer.receipt"
	KindAck        = "transfer.ack"
)
