// Package app turns a loaded configuration into a runnable connector: it compiles the
// pipelines, builds the decoders, the Kafka options and the tenants' writers. The commands
// run, check, demo and replay share it, so what check accepts is exactly what run runs.
package app

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/expr-lang/expr/file"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"go.uber.org/zap"

	"github.com/augment-connector/augment-connector/connector"
	"github.com/augment-connector/augment-connector/internal/config"
	"github.com/augment-connector/augment-connector/internal/tables"
	"github.com/augment-connector/augment-connector/schemas"
	"github.com/augment-connector/augment-connector/transform"
)

// Compiled is a configuration compiled and checked offline: expressions compiled, local
// schemas parsed. Nothing in it has touched the network.
type Compiled struct {
	Config    *config.Config
	Pipelines []*transform.Pipeline // in config order
	// Tables are the lookup tables, empty until the connector runs them; nil when the config
	// has none. The pipelines' lookups read them.
	Tables *tables.Set
}

// Compile compiles every table and pipeline of cfg and parses local schema files, reporting
// every problem at once as config.Errors, each with its file, line and key path.
func Compile(cfg *config.Config, opts ...transform.Option) (*Compiled, error) {
	var errs config.Errors
	out := &Compiled{Config: cfg}
	if len(cfg.Tables) > 0 {
		set, terrs := compileTables(cfg)
		errs = append(errs, terrs...)
		var lookups transform.Tables = declaredTables(cfg.Tables)
		if set != nil {
			out.Tables, lookups = set, set
		}
		opts = append(slices.Clip(opts), transform.WithTables(lookups))
	}
	for i := range cfg.Pipelines {
		pc := &cfg.Pipelines[i]
		p, err := transform.Compile(spec(pc), opts...)
		if err != nil {
			var ce *transform.CompileErrors
			if !errors.As(err, &ce) {
				return nil, fmt.Errorf("compiling pipeline %q: %w", pc.Name, err)
			}
			for _, fe := range ce.Errs {
				path := fmt.Sprintf("pipelines[%d].%s", i, fe.Field)
				errs = append(errs, cfg.ErrorAt(path, cfg.Redact(path, fe.Err.Error())))
			}
		}
		out.Pipelines = append(out.Pipelines, p)
		if pc.Decode.Format == config.FormatAvro {
			if _, err := avroDecoder(pc.Decode.SchemaFile); err != nil {
				errs = append(errs, cfg.ErrorAt(fmt.Sprintf("pipelines[%d].decode.schemaFile", i), err.Error()))
			}
		}
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// compileTables compiles the expressions of cfg's tables and builds their Set; the Set is nil
// when an expression does not compile (the errors say which).
func compileTables(cfg *config.Config) (*tables.Set, config.Errors) {
	var errs config.Errors
	var specs []tables.Spec
	for i := range cfg.Tables {
		tc := &cfg.Tables[i]
		p := fmt.Sprintf("tables[%d]", i)
		expr := func(field, code string) *transform.Expr {
			if strings.TrimSpace(code) == "" {
				return nil
			}
			e, err := transform.CompileExpr(code)
			if err != nil {
				errs = append(errs, cfg.ErrorAt(p+"."+field, cfg.Redact(p+"."+field, err.Error())))
			}
			return e
		}
		sp := tables.Spec{
			Name:       tc.Name,
			Topic:      tc.Topic,
			Key:        expr("key", tc.Key),
			ID:         expr("id", tc.ID),
			Delete:     expr("delete", tc.Delete),
			TTL:        tc.TTL,
			MaxEntries: tc.MaxEntries,
			MaxBytes:   int64(tc.MaxBytes),
		}
		for _, name := range slices.Sorted(maps.Keys(tc.Value)) {
			sp.Fields = append(sp.Fields, tables.Field{Name: name, Value: expr("value."+name, tc.Value[name])})
		}
		if tc.Decode.Format == config.FormatAvro {
			if _, err := avroDecoder(tc.Decode.SchemaFile); err != nil {
				errs = append(errs, cfg.ErrorAt(p+".decode.schemaFile", err.Error()))
			}
		}
		specs = append(specs, sp)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	set, err := tables.New(specs, nil)
	if err != nil {
		return nil, config.Errors{cfg.ErrorAt("tables", err.Error())}
	}
	return set, nil
}

// declaredTables answers which tables exist from the config alone, so pipelines' lookups are
// checked even when a table's own expressions do not compile (or the file did not load).
type declaredTables []config.TableConfig

func (d declaredTables) Table(name string) (exists, multi bool) {
	for _, tc := range d {
		if tc.Name == name {
			return true, strings.TrimSpace(tc.ID) != ""
		}
	}
	return false, false
}

func (declaredTables) Lookup(string, string) map[string]any { return nil }
func (declaredTables) LookupAll(string, string) []any       { return nil }

// Load loads the config file at path and compiles it: what run runs and check checks.
//
// config.Load reports a broken file without a Config, so Compile alone could report a bad
// expression only after every other problem is fixed. When the file does not load, Load
// compiles its pipelines' expressions from the file as written (config.Draft) and merges what
// they report into the config errors, sorted by line: every problem of the file at once.
func Load(path string, opts ...transform.Option) (*Compiled, error) {
	cfg, err := config.Load(path)
	if err == nil {
		return Compile(cfg, opts...)
	}
	var errs config.Errors
	if !errors.As(err, &errs) {
		return nil, err
	}
	data, rerr := os.ReadFile(path)
	if rerr != nil {
		return nil, err // config.Load read it a moment ago; report what it found
	}
	return nil, errs.Merge(rawExprErrors(path, data, errs, opts))
}

// rawExprErrors compiles the expressions of the pipelines of data, the config file name that
// did not load, and returns their compile errors in the form config errors take, at the lines
// config.Draft places them. Only expression errors are kept: everything else about a pipeline
// is config's to report, and known already. A field config already reported, or whose text
// has a ${VAR} (expanded only by config), is left out rather than reported wrongly.
func rawExprErrors(name string, data []byte, known config.Errors, opts []transform.Option) config.Errors {
	d := config.ReadDraft(name, data)
	if d == nil {
		return nil
	}
	if d.Tables != nil {
		opts = append(slices.Clip(opts), transform.WithTables(declaredTables(d.Tables)))
	}
	var out config.Errors
	for i := range d.Pipelines {
		_, err := transform.Compile(spec(&d.Pipelines[i]), opts...)
		var ce *transform.CompileErrors
		if !errors.As(err, &ce) {
			continue
		}
		for _, fe := range ce.Errs {
			var exprErr *file.Error
			if !errors.As(fe.Err, &exprErr) {
				continue
			}
			path := fmt.Sprintf("pipelines[%d].%s", i, fe.Field)
			if known.Has(path) {
				continue
			}
			if e := d.ErrorAt(path, fe.Err.Error()); e != nil {
				out = append(out, e)
			}
		}
	}
	return out
}

// budgetOptions maps the budget section to the connector's options.
func budgetOptions(b *config.BudgetConfig) connector.BudgetOptions {
	o := connector.BudgetOptions{Coordination: connector.BudgetLocal}
	if b.Coordination == config.CoordinationKafka {
		o = connector.BudgetOptions{
			Coordination:      connector.BudgetKafka,
			Topic:             b.Ledger.Topic,
			MemberID:          b.Ledger.MemberID,
			AllowUnsafeTopic:  b.Ledger.AllowUnsafeTopic,
			ClaimValidity:     b.Ledger.ClaimValidity,
			MaxRequestTimeout: b.Ledger.MaxRequestTimeout,
			UnavailableAfter:  b.Ledger.UnavailableAfter,
		}
	}
	return o
}

func avroDecoder(path string) (*schemas.AvroDecoder, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading schema: %w", err)
	}
	d, err := schemas.NewAvroDecoder(string(b))
	if err != nil {
		return nil, fmt.Errorf("parsing schema: %w", err)
	}
	return d, nil
}

// Options builds the connector's options from a compiled configuration. It logs each of the
// config's Warnings at Warn first: every command that connects (run, replay, demo) builds its
// options here at start-up, so an insecure setting or a deprecated key is never silent.
func (c *Compiled) Options(log *zap.Logger) (connector.Options, error) {
	cfg := c.Config
	for _, w := range cfg.Warnings() {
		log.Warn("config warning: "+w.Msg, zap.String("key", w.Path), zap.String("file", w.File), zap.Int("line", w.Line))
	}
	kopts, err := cfg.KafkaOptsNotify(func(file string) {
		log.Info("a kafka SASL secret file changed; authenticating with the new secret", zap.String("file", file))
	})
	if err != nil {
		return connector.Options{}, fmt.Errorf("kafka: %w", err)
	}
	start := kgo.NewOffset().AtStart()
	if cfg.Kafka.StartOffset == config.StartLatest {
		start = kgo.NewOffset().AtEnd()
	}
	o := connector.Options{
		KafkaOpts:               kopts,
		Group:                   cfg.Kafka.GroupID,
		Start:                   start,
		Tenants:                 make(map[string]connector.TenantOptions, len(cfg.Tenants)),
		DeadLetterTopic:         cfg.DeadLetter.Topic,
		DeadLetterOmitValue:     !cfg.DeadLetter.IncludeValue,
		DeadLetterPrivateValues: cfg.DeadLetter.IncludePrivateValues,
		IsTransientDecodeError:  schemas.IsTransient,
		ShutdownTimeout:         cfg.Connector.ShutdownTimeout,
		CommitInterval:          cfg.Connector.CommitInterval,
		MaxPendingRecords:       cfg.Connector.MaxPendingRecords,
		MaxPendingBytes:         int64(cfg.Connector.MaxPendingBytes),
		MaxVariables:            cfg.Connector.MaxVariablesPerRequest,
		Linger:                  cfg.Connector.Linger,
		PingTimeout:             2 * cfg.Kafka.DialTimeout,
		Budget:                  budgetOptions(&cfg.Budget),
		Logger:                  log,
	}
	for name, t := range cfg.Tenants {
		tlsCfg, err := t.HTTPTLSConfig()
		if err != nil {
			return connector.Options{}, fmt.Errorf("tenant %q: %w", name, err)
		}
		var reload func() (string, error)
		if file := t.TokenFile; file != "" {
			reload = func() (string, error) {
				tok, err := config.ReadSecretFile(file)
				return string(tok), err
			}
		}
		o.Tenants[name] = connector.TenantOptions{
			ReloadToken:       reload,
			BaseURL:           t.BaseURL(),
			TenantID:          t.TenantID,
			Token:             string(t.Token),
			RequestsPerMinute: t.RequestsPerMinute,
			Concurrency:       t.Concurrency,
			RequestTimeout:    t.RequestTimeout,
			TLS:               tlsCfg,
			DataForm:          t.BodyForm == config.BodyFormData,
			NotFoundGrace:     t.NotFoundGrace,
			OnGone:            t.OnGone,
			MaxRetryElapsed:   t.MaxRetryElapsed,
		}
	}
	var registry *schemas.RegistryDecoder
	registryDecoder := func() (*schemas.RegistryDecoder, error) {
		if registry == nil {
			ropts, err := cfg.RegistryOptsNotify(func(file string) {
				log.Info("a schema registry secret file changed; using the new secret", zap.String("file", file))
			})
			if err != nil {
				return nil, fmt.Errorf("schema registry: %w", err)
			}
			cl, err := sr.NewClient(ropts...)
			if err != nil {
				return nil, fmt.Errorf("schema registry: %w", err)
			}
			registry = schemas.NewRegistryDecoder(cl, schemas.WithLogger(log.Named("schemas")))
		}
		return registry, nil
	}
	formatDecoder := func(dc config.DecodeConfig) (schemas.Decoder, error) {
		switch dc.Format {
		case config.FormatAvroRegistry:
			return registryDecoder()
		case config.FormatAvro:
			return avroDecoder(dc.SchemaFile)
		default:
			return schemas.NewJSONDecoder(), nil
		}
	}
	// decoder builds the decoder of one pipeline or table, bounded by its own maxRecordBytes:
	// the registry decoder (and its codec cache) is shared, the bound is not.
	decoder := func(dc config.DecodeConfig) (connector.Decoder, error) {
		d, err := formatDecoder(dc)
		if err != nil {
			return nil, err
		}
		return schemas.LimitSize(d, int(dc.MaxRecordBytes)), nil
	}
	// keyDecoder builds the key decoder of one pipeline or table: nil (keys read as strings)
	// unless its keyFormat is avro-registry.
	keyDecoder := func(dc config.DecodeConfig) (connector.Decoder, error) {
		if dc.KeyFormat != config.FormatAvroRegistry {
			return nil, nil
		}
		reg, err := registryDecoder()
		if err != nil {
			return nil, err
		}
		return schemas.NewKeyDecoder(schemas.LimitSize(reg, int(dc.MaxRecordBytes))), nil
	}
	for i := range cfg.Pipelines {
		pc := &cfg.Pipelines[i]
		dec, err := decoder(pc.Decode)
		if err != nil {
			return connector.Options{}, fmt.Errorf("pipeline %q: %w", pc.Name, err)
		}
		keyDec, err := keyDecoder(pc.Decode)
		if err != nil {
			return connector.Options{}, fmt.Errorf("pipeline %q: %w", pc.Name, err)
		}
		o.Pipelines = append(o.Pipelines, connector.Pipeline{
			Name:              pc.Name,
			Topics:            pc.Topics,
			Tenant:            pc.Tenant,
			Decoder:           dec,
			KeyDecoder:        keyDec,
			Transform:         c.Pipelines[i],
			OnLookupMiss:      c.Pipelines[i].OnLookupMiss(),
			LookupRetryWindow: pc.LookupRetryWindow,
			MaxRecordAge:      pc.MaxRecordAge,
			OnStale:           pc.OnStale,
			Private:           c.Pipelines[i].MayBePrivate(),
		})
	}
	if c.Tables != nil {
		decs := make([]tables.Decoder, len(cfg.Tables))
		keyDecs := make([]tables.Decoder, len(cfg.Tables))
		for i := range cfg.Tables {
			d, err := decoder(cfg.Tables[i].Decode)
			if err != nil {
				return connector.Options{}, fmt.Errorf("table %q: %w", cfg.Tables[i].Name, err)
			}
			decs[i] = d
			kd, err := keyDecoder(cfg.Tables[i].Decode)
			if err != nil {
				return connector.Options{}, fmt.Errorf("table %q: %w", cfg.Tables[i].Name, err)
			}
			if kd != nil {
				keyDecs[i] = kd
			}
		}
		if err := c.Tables.Prepare(tables.LoaderOptions{
			KafkaOpts:              kopts,
			Decoders:               decs,
			KeyDecoders:            keyDecs,
			IsTransientDecodeError: schemas.IsTransient,
			Logger:                 log.Named("tables"),
		}); err != nil {
			return connector.Options{}, err
		}
		o.Tables = c.Tables
	}
	return o, nil
}
