// Package app turns a loaded configuration into a runnable connector: it compiles the
// pipelines, builds the decoders, the Kafka options and the tenants' writers. The commands
// run, check, demo and replay share it, so what check accepts is exactly what run runs.
package app

import (
	"errors"
	"fmt"
	"os"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"go.uber.org/zap"

	"github.com/augment-connector/augment-connector/connector"
	"github.com/augment-connector/augment-connector/internal/config"
	"github.com/augment-connector/augment-connector/schemas"
	"github.com/augment-connector/augment-connector/transform"
)

// Compiled is a configuration compiled and checked offline: expressions compiled, local
// schemas parsed. Nothing in it has touched the network.
type Compiled struct {
	Config    *config.Config
	Pipelines []*transform.Pipeline // in config order
}

// Compile compiles every pipeline of cfg and parses local schema files, reporting every
// problem at once as config.Errors, each with its file, line and key path.
func Compile(cfg *config.Config, opts ...transform.Option) (*Compiled, error) {
	var errs config.Errors
	out := &Compiled{Config: cfg}
	for i := range cfg.Pipelines {
		pc := &cfg.Pipelines[i]
		p, err := transform.Compile(pc.Spec(), opts...)
		if err != nil {
			var ce *transform.CompileErrors
			if !errors.As(err, &ce) {
				return nil, fmt.Errorf("compiling pipeline %q: %w", pc.Name, err)
			}
			for _, fe := range ce.Errs {
				errs = append(errs, cfg.ErrorAt(fmt.Sprintf("pipelines[%d].%s", i, fe.Field), fe.Err.Error()))
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

// Options builds the connector's options from a compiled configuration.
func (c *Compiled) Options(log *zap.Logger) (connector.Options, error) {
	cfg := c.Config
	kopts, err := cfg.KafkaOpts()
	if err != nil {
		return connector.Options{}, fmt.Errorf("kafka: %w", err)
	}
	start := kgo.NewOffset().AtStart()
	if cfg.Kafka.StartOffset == config.StartLatest {
		start = kgo.NewOffset().AtEnd()
	}
	o := connector.Options{
		KafkaOpts:              kopts,
		Group:                  cfg.Kafka.GroupID,
		Start:                  start,
		Tenants:                make(map[string]connector.TenantOptions, len(cfg.Tenants)),
		DeadLetterTopic:        cfg.DeadLetter.Topic,
		DeadLetterOmitValue:    !cfg.DeadLetter.IncludeValue,
		IsTransientDecodeError: schemas.IsTransient,
		ShutdownTimeout:        cfg.Connector.ShutdownTimeout,
		CommitInterval:         cfg.Connector.CommitInterval,
		MaxPendingRecords:      cfg.Connector.MaxPendingRecords,
		MaxPendingBytes:        int64(cfg.Connector.MaxPendingBytes),
		MaxVariables:           cfg.Connector.MaxVariablesPerRequest,
		Linger:                 cfg.Connector.Linger,
		Logger:                 log,
	}
	for name, t := range cfg.Tenants {
		tlsCfg, err := t.HTTPTLSConfig()
		if err != nil {
			return connector.Options{}, fmt.Errorf("tenant %q: %w", name, err)
		}
		if t.AllowInsecureHTTP && len(t.BaseURL()) >= 7 && t.BaseURL()[:7] == "http://" {
			log.Warn("tenant writes over plain HTTP: the action token and the variables travel unencrypted", zap.String("tenant", name))
		}
		o.Tenants[name] = connector.TenantOptions{
			BaseURL:           t.BaseURL(),
			TenantID:          t.TenantID,
			Token:             string(t.Token),
			RequestsPerMinute: t.RequestsPerMinute,
			Concurrency:       t.Concurrency,
			RequestTimeout:    t.RequestTimeout,
			TLS:               tlsCfg,
			DataForm:          t.BodyForm == config.BodyFormData,
			NotFoundWindow:    t.NotFoundWindow,
			MaxRetryElapsed:   t.MaxRetryElapsed,
		}
	}
	var registry *schemas.RegistryDecoder
	for i := range cfg.Pipelines {
		pc := &cfg.Pipelines[i]
		var dec connector.Decoder
		switch pc.Decode.Format {
		case config.FormatAvroRegistry:
			if registry == nil {
				ropts, err := cfg.RegistryOpts()
				if err != nil {
					return connector.Options{}, fmt.Errorf("schema registry: %w", err)
				}
				cl, err := sr.NewClient(ropts...)
				if err != nil {
					return connector.Options{}, fmt.Errorf("schema registry: %w", err)
				}
				registry = schemas.NewRegistryDecoder(cl, schemas.WithLogger(log.Named("schemas")))
			}
			dec = registry
		case config.FormatAvro:
			d, err := avroDecoder(pc.Decode.SchemaFile)
			if err != nil {
				return connector.Options{}, fmt.Errorf("pipeline %q: %w", pc.Name, err)
			}
			dec = d
		default:
			dec = schemas.NewJSONDecoder()
		}
		o.Pipelines = append(o.Pipelines, connector.Pipeline{
			Name:      pc.Name,
			Topics:    pc.Topics,
			Tenant:    pc.Tenant,
			Decoder:   dec,
			Transform: c.Pipelines[i],
		})
	}
	return o, nil
}
