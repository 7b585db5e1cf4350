package transfer

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/mimnode/mimnode/node/store"
	"github.com/mimnode/mimnode/protocol"
	dsp "github.com/mimnode/mimnode/protocol/transfer"
)

// Key layout under store.PrefixTransfer:
//
//	t/p/<role>/<pid>              a process: state machine and Info
//	t/r/<consumer>/<consumerPid>  provider pid of a consumer's request (resends)
//	t/n/<agreement>               transfers granted under an agreement, uint64
//	t/m/<version CID>             manifest bytes (both sides)
//	t/b/<block CID>               block bytes, as nodes kept them before block
//	                              files (blockfiles.go); read, no longer written,
//	                              except by an in-memory store
//	t/v/<agreement>               consumer: last version landed
//	t/e/<entity id>               consumer: provenance of a received entity:
//	                              its JSON, or "@" and the <sum> of a shared record
//	t/o/<sum>                     consumer: a provenance record shared by the
//	                              entities of a landing (JSON; sum: SHA-256,
//	                              first 16 bytes, hex)
func procKey(role dsp.Role, pid string) []byte {
	return store.Key(store.PrefixTransfer, "p", string(role), url.PathEscape(pid))
}
func firstKey(consumer, consumerPid string) []byte {
	return store.Key(store.PrefixTransfer, "r", consumer, url.PathEscape(consumerPid))
}
func countKey(agreement string) []byte {
	return store.Key(store.PrefixTransfer, "n", url.PathEscape(agreement))
}
func manifestKey(c string) []byte { return store.Key(store.PrefixTransfer, "m", c) }
func blockKey(c string) []byte    { return store.Key(store.PrefixTransfer, "b", c) }

// servedKey records that the manifest of version went to the consumer of
// agreement: that version's blocks may then be delta bases for it.
func servedKey(agreement, version string) []byte {
	return store.Key(store.PrefixTransfer, "s", url.PathEscape(agreement), version)
}

// movedKey holds what earlier, interrupted runs of consumer process pid
// moved (movedSoFar), so that its usage record counts them too.
func movedKey(pid string) []byte {
	return store.Key(store.PrefixTransfer, "w", url.PathEscape(pid))
}

func landedKey(agreement string) []byte {
	return store.Key(store.PrefixTransfer, "v", url.PathEscape(agreement))
}

// misfitKey records that the last landing under agreement left out
// entities whose types the dataset's description did not declare, and
// under which description (declared.signature).
func misfitKey(agreement string) []byte {
	return store.Key(store.PrefixTransfer, "x", url.PathEscape(agreement))
}
func provenanceKey(id string) []byte {
	return store.Key(store.PrefixTransfer, "e", url.PathEscape(id))
}
func sharedProvenanceKey(sum string) []byte { return store.Key(store.PrefixTransfer, "o", sum) }

// sharedProvenance returns the key of the shared record holding the
// provenance JSON prov, and what an entity's provenance key holds to
// point at it ("@" and the record's sum): a landing writes the record
// once and 33 bytes per entity instead of the whole JSON (about 250
// bytes) each.
func sharedProvenance(prov []byte) (key, ref []byte) {
	sum := sha256.Sum256(prov)
	h := hex.EncodeToString(sum[:16])
	return sharedProvenanceKey(h), []byte("@" + h)
}

// provenanceReader reads entities' provenance in one transaction: a
// value of a provenance key is the JSON itself (live changes, and every
// record written before shared records) or a reference to a shared
// record, read once per reader.
type provenanceReader struct {
	tx     *store.Txn
	shared map[string]Provenance
}

// read returns the provenance of entity id; ok is false for an entity
// this node did not receive.
func (r *provenanceReader) read(id string) (p Provenance, ok bool, err error) {
	b, err := r.tx.Get(provenanceKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return Provenance{}, false, nil
	}
	if err != nil {
		return Provenance{}, false, err
	}
	if len(b) == 0 || b[0] != '@' {
		if err := json.Unmarshal(b, &p); err != nil {
			return Provenance{}, false, fmt.Errorf("provenance of %s: %w", id, err)
		}
		return p, true, nil
	}
	sum := string(b[1:])
	if p, ok := r.shared[sum]; ok {
		return p, true, nil
	}
	rec, err := r.tx.Get(sharedProvenanceKey(sum))
	if err == nil {
		err = json.Unmarshal(rec, &p)
	}
	if err != nil {
		// A missing record is an error, not "local": the entity was
		// received, and must not be served as this node's own.
		return Provenance{}, false, fmt.Errorf("provenance of %s, shared record %s: %w", id, sum, err)
	}
	if r.shared == nil {
		r.shared = map[string]Provenance{}
	}
	r.shared[sum] = p
	return p, true, nil
}

// Formats a consumer asks for in its TransferRequestMessage.
const (
	FormatBlocks = "mimnode-blocks" // snapshot pull of a version's blocks
	FormatLive   = "mimnode-live"   // snapshot, then pushed changes
)

// Usage is the accounting of one transfer (MIM3): what moved and how long
// it took.
type Usage struct {
	// Bytes is what came over the wire: the manifest and the blocks as
	// they travelled (compressed, or as deltas), not the version's size.
	Bytes     int64 `json:"bytes"`
	Blocks    int64 `json:"blocks"`
	Entities  int64 `json:"entities"`
	Refetched int64 `json:"refetched,omitempty"` // blocks fetched again after failing verification
	// Skipped counts blocks of the version the consumer already held.
	Skipped  int64         `json:"skipped,omitempty"`
	Duration time.Duration `json:"duration"`
}

// Info describes one transfer process as the API shows it.
type Info struct {
	ID        string        `json:"id"` // this side's pid
	Role      dsp.Role      `json:"role"`
	State     dsp.State     `json:"state"`
	Agreement string        `json:"agreement"`
	Dataset   string        `json:"dataset"`
	Provider  string        `json:"provider"`
	Consumer  string        `json:"consumer"`
	Format    string        `json:"format"`
	Version   string        `json:"version,omitempty"`
	Code      protocol.Code `json:"code,omitempty"`
	Reasons   []string      `json:"reasons,omitempty"`
	Usage     Usage         `json:"usage"`
	Receipt   bool          `json:"receipt,omitempty"` // a signed receipt and acknowledgement were exchanged
	// FilesDir is where the version's files landed on the consumer, when
	// it has any (FilesDir/<dataset>/<version>).
	FilesDir string `json:"filesDir,omitempty"`
	// NotLanded counts the version's entities the consumer did not write
	// because it holds entities with their ids that are its own or came
	// from another provider or dataset (ownership, land.go), or because
	// their types are not the dataset's (declared.go).
	NotLanded int64     `json:"notLanded,omitempty"`
	Created   time.Time `json:"created"`
	Updated   time.Time `json:"updated"`
}

type record struct {
	Proc json.RawMessage `json:"proc"`
	Info Info            `json:"info"`
}

// entry is a process loaded for stepping; hold its lock (lockProc).
type entry struct {
	p    *dsp.Process
	info Info
}

func (s *Service) load(role dsp.Role, pid string) (*entry, error) {
	var b []byte
	err := s.o.Store.View(func(tx *store.Txn) error {
		var err error
		b, err = tx.Get(procKey(role, pid))
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("transfer %s: %w", pid, ErrUnknownTransfer)
	}
	if err != nil {
		return nil, fmt.Errorf("reading transfer %s: %w", pid, err)
	}
	return decodeRecord(b)
}

func decodeRecord(b []byte) (*entry, error) {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decoding transfer record: %w", err)
	}
	p, err := dsp.Unmarshal(r.Proc)
	if err != nil {
		return nil, fmt.Errorf("decoding transfer %s: %w", r.Info.ID, err)
	}
	return &entry{p: p, info: r.Info}, nil
}

func (s *Service) save(e *entry, extra func(tx *store.Txn) error) error {
	proc, err := e.p.Marshal()
	if err != nil {
		return fmt.Errorf("encoding transfer %s: %w", e.info.ID, err)
	}
	e.info.State = e.p.State()
	e.info.Code, e.info.Reasons = e.p.Reason()
	e.info.Updated = s.o.Now().UTC()
	b, err := json.Marshal(record{Proc: proc, Info: e.info})
	if err != nil {
		return fmt.Errorf("encoding transfer %s: %w", e.info.ID, err)
	}
	if err := s.o.Store.Update(func(tx *store.Txn) error {
		if extra != nil {
			if err := extra(tx); err != nil {
				return err
			}
		}
		return tx.Set(procKey(e.p.Role(), e.info.ID), b)
	}); err != nil {
		return fmt.Errorf("saving transfer %s: %w", e.info.ID, err)
	}
	return nil
}

// step feeds m to the process, persists it with its Info on every
// transition and logs the transitions, as the state machine's driver must.
// The returned Ready carries the reply and messages to send. also run in
// the same write as the process, when it is written.
func (s *Service) step(e *entry, m dsp.Msg, also ...func(tx *store.Txn) error) (dsp.Ready, error) {
	m.Now = s.o.Now()
	err := e.p.Step(m)
	rd := e.p.Ready()
	if rd.MustPersist || len(rd.Transitions) > 0 {
		var with func(tx *store.Txn) error
		if len(also) > 0 {
			with = func(tx *store.Txn) error {
				for _, fn := range also {
					if err := fn(tx); err != nil {
						return err
					}
				}
				return nil
			}
		}
		if perr := s.save(e, with); perr != nil {
			return rd, perr
		}
	}
	for _, t := range rd.Transitions {
		s.auditf(KindTransition, e.info.ID, e.p.Peer(), map[string]any{
			"role": e.p.Role(), "agreement": e.info.Agreement, "from": t.From, "to": t.To,
			"cause": t.Cause, "code": t.Code, "reasons": t.Reasons})
		s.noteTransition(e, t)
		if t.To == dsp.Terminated && m.Type == dsp.MsgReceive && e.p.Role() == dsp.Consumer {
			// The provider ended it (the process takes a message from
			// its peer only).
			s.told(e.info.Agreement, e.p.Peer(), t.Code, t.Reasons)
		}
	}
	e.p.Advance()
	return rd, err
}

// noteTransition tells the node's log when a transfer starts and how it
// ends (the transaction log, mimnode audit, holds every step), and counts
// the ends in the service's metrics.
func (s *Service) noteTransition(e *entry, t dsp.Transition) {
	if t.From == t.To {
		return
	}
	in := e.info
	switch t.To {
	case dsp.Started:
		if t.From == dsp.Suspended {
			s.log.Info("transfer resumed", "role", in.Role, "peer", e.p.Peer(), "id", in.ID)
			return
		}
		s.log.Info("transfer started", "role", in.Role, "peer", e.p.Peer(), "dataset", in.Dataset, "agreement", in.Agreement, "format", in.Format, "id", in.ID)
	case dsp.Suspended:
		s.log.Info("transfer suspended", "role", in.Role, "peer", e.p.Peer(), "id", in.ID)
	case dsp.Completed:
		role := string(in.Role)
		s.metrics.ended.WithLabelValues(role, "completed").Inc()
		s.metrics.bytes.WithLabelValues(role).Add(float64(in.Usage.Bytes))
		s.metrics.entities.WithLabelValues(role).Add(float64(in.Usage.Entities))
		s.log.Info("transfer completed", "role", in.Role, "peer", e.p.Peer(), "dataset", in.Dataset, "version", in.Version,
			"entities", in.Usage.Entities, "bytes", in.Usage.Bytes, "id", in.ID)
	case dsp.Terminated:
		s.metrics.ended.WithLabelValues(string(in.Role), "terminated").Inc()
		s.log.Info("transfer ended", "role", in.Role, "peer", e.p.Peer(), "dataset", in.Dataset, "code", t.Code, "reasons", t.Reasons, "id", in.ID)
	}
}

// List returns every transfer on this node, newest first.
func (s *Service) List() ([]Info, error) {
	out := []Info{}
	err := s.o.Store.View(func(tx *store.Txn) error {
		return tx.Iterate(store.IterOptions{Prefix: store.Key(store.PrefixTransfer, "p", "")}, func(_, v []byte) error {
			var r record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decoding transfer record: %w", err)
			}
			out = append(out, r.Info)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("listing transfers: %w", err)
	}
	sortNewest(out)
	return out, nil
}

// Get returns transfer id (either role).
func (s *Service) Get(id string) (Info, error) {
	for _, r := range []dsp.Role{dsp.Consumer, dsp.Provider} {
		e, err := s.load(r, id)
		if err == nil {
			return e.info, nil
		}
		if !errors.Is(err, ErrUnknownTransfer) {
			return Info{}, err
		}
	}
	return Info{}, fmt.Errorf("transfer %s: %w", id, ErrUnknownTransfer)
}

func readCount(tx *store.Txn, agreement string) (uint64, error) {
	b, err := tx.Get(countKey(agreement))
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("transfer count of %s: %d bytes, want 8", agreement, len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

// Count returns how many transfers this node granted under agreement.
func (s *Service) Count(agreement string) (int, error) {
	var n uint64
	err := s.o.Store.View(func(tx *store.Txn) error {
		var err error
		n, err = readCount(tx, agreement)
		return err
	})
	return int(n), err
}

// Provenance says where a received entity came from.
type Provenance struct {
	Provider  string `json:"provider"`
	Dataset   string `json:"dataset"`
	Agreement string `json:"agreement"`
	Version   string `json:"version"`
	// Distribute is false when the agreement's policy does not permit
	// distribute: the node must never serve the entity onwards.
	Distribute bool `json:"distribute"`
	// Until is the end of the agreement's validity (zero: open-ended):
	// from then on the entity is not served onwards either, nor once the
	// agreement is revoked (passable).
	Until time.Time `json:"until,omitzero"`
}

// ProvenanceOf returns the provenance of a received entity; ok is false
// for the node's own entities.
func (s *Service) ProvenanceOf(entityID string) (p Provenance, ok bool, err error) {
	err = s.o.Store.View(func(tx *store.Txn) error {
		r := provenanceReader{tx: tx}
		p, ok, err = r.read(entityID)
		return err
	})
	if err != nil {
		return Provenance{}, false, fmt.Errorf("reading provenance of %s: %w", entityID, err)
	}
	return p, ok, nil
}
