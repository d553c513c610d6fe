package schemas

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
	"go.uber.org/zap"
)

// Defaults of the registry decoder's options.
const (
	DefaultFailureTTL   = 30 * time.Second
	DefaultFetchTimeout = 10 * time.Second
)

// maxReferenceDepth bounds the chain of schema references followed for one schema.
const maxReferenceDepth = 8

// sweepAt is the number of cached failures above which expired ones are swept on insert, so a
// topic of random garbage ids cannot grow the cache without bound.
const sweepAt = 1024

// RegistryOption configures NewRegistryDecoder.
type RegistryOption func(*registryConfig)

type registryConfig struct {
	failureTTL   time.Duration
	fetchTimeout time.Duration
	now          func() time.Time
	log          *zap.Logger
}

// WithFailureTTL sets how long a permanent failure for a schema id (404, unusable schema) is
// remembered before the registry is asked again, overriding the default of 30s. Transient
// failures are never remembered.
func WithFailureTTL(d time.Duration) RegistryOption {
	return func(c *registryConfig) { c.failureTTL = d }
}

// WithFetchTimeout bounds one fetch of a schema (with its references), overriding the default
// of 10s. A fetch that times out is a transient failure.
func WithFetchTimeout(d time.Duration) RegistryOption {
	return func(c *registryConfig) { c.fetchTimeout = d }
}

// WithClock replaces time.Now, for tests of the failure TTL.
func WithClock(now func() time.Time) RegistryOption {
	return func(c *registryConfig) { c.now = now }
}

// WithLogger logs each schema fetched and each fetch that failed (never per record). The
// default logs nothing.
func WithLogger(l *zap.Logger) RegistryOption {
	return func(c *registryConfig) { c.log = l }
}

// RegistryDecoder decodes Confluent-framed Avro: a magic byte 0, the schema id as a 4-byte big
// endian integer, then the Avro binary of the value.
//
// Each schema id is fetched from the registry once and its codec kept for the life of the
// decoder (schema ids are immutable). Decoding with a known id takes no lock. Concurrent first
// decodes of one id share a single fetch. A permanent failure is remembered for the failure TTL;
// a transient one is not, so the next attempt asks again.
type RegistryDecoder struct {
	client *sr.Client
	cfg    registryConfig
	hdr    sr.ConfluentHeader

	// codecs is copy-on-write: readers load it without a lock, writers (under mu) replace it.
	codecs atomic.Pointer[map[int]*codec]

	mu       sync.Mutex
	failures map[int]failure
	inflight map[int]*fetchCall

	// onWait, when set by a test, is called each time a decode starts waiting for another's
	// fetch.
	onWait func()
}

type failure struct {
	err   error
	until time.Time
}

// fetchCall is one fetch that concurrent decoders of the same id wait for.
type fetchCall struct {
	done chan struct{}
	c    *codec
	err  error
	// abandoned: the fetching caller's own context ended; a waiter whose context is alive
	// fetches again instead of taking that error as its own.
	abandoned bool
}

// NewRegistryDecoder returns a decoder that resolves schema ids with client. It starts no
// goroutine and needs no Close.
func NewRegistryDecoder(client *sr.Client, opts ...RegistryOption) *RegistryDecoder {
	cfg := registryConfig{
		failureTTL:   DefaultFailureTTL,
		fetchTimeout: DefaultFetchTimeout,
		now:          time.Now,
		log:          zap.NewNop(),
	}
	for _, o := range opts {
		o(&cfg)
	}
	d := &RegistryDecoder{
		client:   client,
		cfg:      cfg,
		failures: make(map[int]failure),
		inflight: make(map[int]*fetchCall),
	}
	empty := map[int]*codec{}
	d.codecs.Store(&empty)
	return d
}

// Decode decodes one framed value. Errors: ErrBadFrame, ErrUnknownSchema, ErrUnsupportedSchema,
// ErrDecode (permanent); *TransientError (registry outage: retry); or ctx's error.
func (d *RegistryDecoder) Decode(ctx context.Context, b []byte) (any, error) {
	if len(b) == 0 {
		return nil, nil
	}
	id, payload, err := d.hdr.DecodeID(b)
	if err != nil {
		return nil, fmt.Errorf("decoding frame: %w", ErrBadFrame)
	}
	c, err := d.codec(ctx, id)
	if err != nil {
		return nil, err
	}
	return c.decode(payload)
}

// SchemaID returns the schema id of a framed value, for logs and dead-letter headers.
func SchemaID(b []byte) (int, error) {
	id, _, err := (&sr.ConfluentHeader{}).DecodeID(b)
	if err != nil {
		return 0, fmt.Errorf("decoding frame: %w", ErrBadFrame)
	}
	return id, nil
}

func (d *RegistryDecoder) codec(ctx context.Context, id int) (*codec, error) {
	if c, ok := (*d.codecs.Load())[id]; ok {
		return c, nil
	}
	for {
		d.mu.Lock()
		if c, ok := (*d.codecs.Load())[id]; ok {
			d.mu.Unlock()
			return c, nil
		}
		if f, ok := d.failures[id]; ok {
			if d.cfg.now().Before(f.until) {
				d.mu.Unlock()
				return nil, f.err
			}
			delete(d.failures, id)
		}
		if call, ok := d.inflight[id]; ok {
			d.mu.Unlock()
			if d.onWait != nil {
				d.onWait()
			}
			select {
			case <-call.done:
			case <-ctx.Done():
				return nil, fmt.Errorf("waiting for schema %d: %w", id, context.Cause(ctx))
			}
			if call.abandoned && ctx.Err() == nil {
				continue
			}
			return call.c, call.err
		}
		call := &fetchCall{done: make(chan struct{})}
		d.inflight[id] = call
		d.mu.Unlock()

		c, err := d.fetch(ctx, id)

		d.mu.Lock()
		delete(d.inflight, id)
		switch {
		case err == nil:
			old := *d.codecs.Load()
			next := make(map[int]*codec, len(old)+1)
			for k, v := range old {
				next[k] = v
			}
			next[id] = c
			d.codecs.Store(&next)
		case IsPermanent(err):
			d.remember(id, err)
		}
		call.c, call.err = c, err
		call.abandoned = err != nil && !IsPermanent(err) && !IsTransient(err)
		close(call.done)
		d.mu.Unlock()
		return c, err
	}
}

// remember caches a permanent failure; d.mu is held.
func (d *RegistryDecoder) remember(id int, err error) {
	now := d.cfg.now()
	if len(d.failures) >= sweepAt {
		for k, f := range d.failures {
			if !now.Before(f.until) {
				delete(d.failures, k)
			}
		}
	}
	d.failures[id] = failure{err: err, until: now.Add(d.cfg.failureTTL)}
}

// fetch asks the registry for schema id and builds its codec.
func (d *RegistryDecoder) fetch(ctx context.Context, id int) (*codec, error) {
	fctx, cancel := context.WithTimeout(ctx, d.cfg.fetchTimeout)
	defer cancel()
	s, err := d.client.SchemaByID(fctx, id)
	if err != nil {
		err = d.classify(ctx, id, err)
		d.cfg.log.Warn("fetching schema failed", zap.Int("schemaId", id), zap.Error(err))
		return nil, err
	}
	if s.Type != sr.TypeAvro {
		err := fmt.Errorf("fetching schema %d: %w: type %s", id, ErrUnsupportedSchema, s.Type)
		d.cfg.log.Warn("fetching schema failed", zap.Int("schemaId", id), zap.Error(err))
		return nil, err
	}
	text := s.Schema
	if len(s.References) > 0 {
		if text, err = d.inlineReferences(fctx, ctx, id, s); err != nil {
			d.cfg.log.Warn("fetching schema failed", zap.Int("schemaId", id), zap.Error(err))
			return nil, err
		}
	}
	label := "schema " + strconv.Itoa(id)
	c, err := newCodec(id, text, label)
	if err != nil {
		err = fmt.Errorf("compiling %s: %w: %w", label, ErrUnsupportedSchema, err)
		d.cfg.log.Warn("fetching schema failed", zap.Int("schemaId", id), zap.Error(err))
		return nil, err
	}
	d.cfg.log.Info("fetched schema", zap.Int("schemaId", id), zap.Int("references", len(s.References)))
	return c, nil
}

// classify turns a registry client error into ErrUnknownSchema (a 404 carrying a registry
// "not found" error code: the id does not exist, a fact about the record), the caller's own
// context error, or a *TransientError (anything else: the registry, not the record, is at
// fault, and waiting may fix it). A bare 404 without a registry error code is transient: it is
// what a wrong registry URL or a proxy answers, and must not dead-letter a whole topic.
func (d *RegistryDecoder) classify(ctx context.Context, id int, err error) error {
	var re *sr.ResponseError
	if errors.As(err, &re) && re.StatusCode == http.StatusNotFound && sr.IsNotFoundError(re.ErrorCode) {
		return fmt.Errorf("fetching schema %d: %w: %s", id, ErrUnknownSchema, re.Error())
	}
	if ctx.Err() != nil {
		return fmt.Errorf("fetching schema %d: %w", id, context.Cause(ctx))
	}
	return &TransientError{ID: id, Err: err}
}

// inlineReferences resolves the references of s (fetching each referenced subject version, and
// its own references in turn) and returns one self-contained schema: goavro has no notion of
// references, so each referenced definition replaces the first use of its name, and later uses
// resolve to that definition. This covers the usual case, named records shared between
// schemas; a reference whose name is never used in a type position is ErrUnsupportedSchema.
func (d *RegistryDecoder) inlineReferences(fctx, ctx context.Context, id int, s sr.Schema) (string, error) {
	root, err := d.resolve(fctx, ctx, id, s, 0)
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(root)
	if err != nil {
		return "", fmt.Errorf("inlining references of schema %d: %w: %w", id, ErrUnsupportedSchema, err)
	}
	return string(b), nil
}

func (d *RegistryDecoder) resolve(fctx, ctx context.Context, id int, s sr.Schema, depth int) (any, error) {
	var root any
	if err := json.Unmarshal([]byte(s.Schema), &root); err != nil {
		return nil, fmt.Errorf("parsing schema %d: %w: %w", id, ErrUnsupportedSchema, err)
	}
	for _, ref := range s.References {
		if depth >= maxReferenceDepth {
			return nil, fmt.Errorf("resolving references of schema %d: %w: nested deeper than %d", id, ErrUnsupportedSchema, maxReferenceDepth)
		}
		ss, err := d.client.SchemaByVersion(fctx, ref.Subject, ref.Version)
		if err != nil {
			return nil, fmt.Errorf("resolving reference %q of schema %d: %w", ref.Name, id, d.classify(ctx, id, err))
		}
		if ss.Type != sr.TypeAvro {
			return nil, fmt.Errorf("resolving reference %q of schema %d: %w: type %s", ref.Name, id, ErrUnsupportedSchema, ss.Type)
		}
		def, err := d.resolve(fctx, ctx, id, ss.Schema, depth+1)
		if err != nil {
			return nil, err
		}
		if !inlineRef(&root, ref.Name, def, "") {
			return nil, fmt.Errorf("resolving reference %q of schema %d: %w: the name is not used", ref.Name, id, ErrUnsupportedSchema)
		}
	}
	return root, nil
}

// inlineRef replaces the first use of the type name in a type position of *node, walking in
// the order goavro builds a schema, by def. ns is the enclosing namespace.
func inlineRef(node *any, name string, def any, ns string) bool {
	switch s := (*node).(type) {
	case string:
		if s == name || fullName(s, ns) == name {
			*node = def
			return true
		}
	case []any:
		for i := range s {
			if inlineRef(&s[i], name, def, ns) {
				return true
			}
		}
	case map[string]any:
		typ, _ := s["type"].(string)
		key := "type"
		switch typ {
		case "record", "error":
			_, childNS := namedType(s, ns)
			fields, _ := s["fields"].([]any)
			for _, f := range fields {
				fm, ok := f.(map[string]any)
				if !ok {
					continue
				}
				t := fm["type"]
				if inlineRef(&t, name, def, childNS) {
					fm["type"] = t
					return true
				}
			}
			return false
		case "enum", "fixed":
			return false
		case "array":
			key = "items"
		case "map":
			key = "values"
		}
		t := s[key]
		if inlineRef(&t, name, def, ns) {
			s[key] = t
			return true
		}
	}
	return false
}
