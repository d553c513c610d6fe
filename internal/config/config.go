// Package config loads the connector's YAML configuration, expands environment variables in
// it, applies defaults and validates it, reporting every problem at once with its file, line and
// key path ("config.yaml:12: tenants.main.token: ..."), so an operator fixes a broken file in
// one pass instead of one error per restart.
//
// The shape of the file is documented key by key in config.example.yaml at the repository root.
// Unknown keys are errors: a misspelt key silently ignored is a default silently used.
//
// Secrets (tokens, passwords) are held in the Secret type, which never prints its value, and
// no error of this package contains one.
//
// What a pipeline means (its expressions, what onDelete does) is package transform's to say;
// internal/app converts a PipelineConfig to a transform.Spec and reports what
// transform.Compile finds at the positions this package keeps: Config.ErrorAt for a file that
// loaded, Draft.ErrorAt for one that did not. This package does not import transform. It still
// checks a few pipeline rules itself (onDelete, onLookupMiss, variable names, displayName,
// dataType, requireActive.table) so that a file that does not load reports them at once with its other problems,
// in messages of its own; internal/app's tests check that both packages accept the same values.
package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"
)

// Config is the whole configuration file.
type Config struct {
	Kafka          KafkaConfig              `yaml:"kafka"`
	SchemaRegistry RegistryConfig           `yaml:"schemaRegistry"`
	Tenants        map[string]*TenantConfig `yaml:"tenants"`
	// Tables are the lookup tables pipelines join against, in file order ("tables[i]").
	Tables []TableConfig `yaml:"tables"`
	// Pipelines are in file order; Pipelines[i] is at key path "pipelines[i]".
	Pipelines  []PipelineConfig `yaml:"pipelines"`
	DeadLetter DeadLetterConfig `yaml:"deadLetter"`
	Connector  ConnectorConfig  `yaml:"connector"`
	Budget     BudgetConfig     `yaml:"budget"`
	Logging    LoggingConfig    `yaml:"logging"`
	Metrics    MetricsConfig    `yaml:"metrics"`
	Tracing    TracingConfig    `yaml:"tracing"`

	file  string         // the name errors are reported against
	lines map[string]int // key path -> line, recorded while walking the YAML tree
	// written holds, for each value expanded from the environment, its text as written and the
	// values substituted, so that an error about it (an expression that does not compile)
	// quotes ${NAME}, never what it expanded to.
	written map[string]written
}

// written is a scalar as the file has it before ${NAME} expansion, and the values expanded.
type written struct {
	text   string
	values []string
}

// KafkaConfig is how the connector reaches the Kafka cluster and joins its consumer group.
type KafkaConfig struct {
	Brokers           []string       `yaml:"brokers"`
	GroupID           string         `yaml:"groupId"`
	ClientID          string         `yaml:"clientId"`
	StartOffset       string         `yaml:"startOffset"`
	TLS               KafkaTLSConfig `yaml:"tls"`
	SASL              SASLConfig     `yaml:"sasl"`
	FetchMaxBytes     ByteSize       `yaml:"fetchMaxBytes"`
	FetchMaxWait      time.Duration  `yaml:"fetchMaxWait"`
	SessionTimeout    time.Duration  `yaml:"sessionTimeout"`
	RebalanceTimeout  time.Duration  `yaml:"rebalanceTimeout"`
	HeartbeatInterval time.Duration  `yaml:"heartbeatInterval"`
	DialTimeout       time.Duration  `yaml:"dialTimeout"`
	// IsolationLevel is read_committed (the default: records of aborted or still open
	// transactions are never delivered) or read_uncommitted.
	IsolationLevel string `yaml:"isolationLevel"`
	// GroupProtocol is classic (the default: every Kafka version, client-side assignment) or
	// consumer (KIP-848: the broker assigns partitions; Kafka 4.0+, 4.3+ recommended). With
	// consumer the session timeout and heartbeat interval are the broker's
	// group.consumer.* settings and sessionTimeout, heartbeatInterval and rebalanceTimeout
	// are not used.
	GroupProtocol string `yaml:"groupProtocol"`
}

// What KafkaConfig.GroupProtocol may be.
const (
	GroupProtocolClassic  = "classic"
	GroupProtocolConsumer = "consumer"
)

// What KafkaConfig.IsolationLevel may be.
const (
	ReadCommitted   = "read_committed"
	ReadUncommitted = "read_uncommitted"
)

// What KafkaConfig.StartOffset may be.
const (
	StartEarliest = "earliest"
	StartLatest   = "latest"
)

// TLSConfig is a TLS client configuration built from PEM files.
type TLSConfig struct {
	CAFile             string `yaml:"caFile"`
	CertFile           string `yaml:"certFile"`
	KeyFile            string `yaml:"keyFile"`
	InsecureSkipVerify bool   `yaml:"insecureSkipVerify"`
	ServerName         string `yaml:"serverName"`
}

func (t *TLSConfig) isSet() bool {
	return t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.InsecureSkipVerify || t.ServerName != ""
}

// KafkaTLSConfig adds the switch that turns TLS on: brokers, unlike URLs, carry no scheme.
type KafkaTLSConfig struct {
	Enabled   bool `yaml:"enabled"`
	TLSConfig `yaml:",inline"`
}

// SASLConfig is the Kafka SASL authentication; Mechanism empty means none.
type SASLConfig struct {
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	// Password is the password, read from PasswordFile at load time when that is set.
	Password     Secret `yaml:"password"`
	PasswordFile string `yaml:"passwordFile"`
	// AllowPlaintext lets PLAIN and OAUTHBEARER run without kafka.tls, sending the password or
	// token in the clear. It is an explicit opt-in, still warned about, because the default
	// must not leak it.
	AllowPlaintext bool `yaml:"allowPlaintext"`
	// Token is OAUTHBEARER's static token, read from TokenFile at load time when that is set;
	// TokenFile is read again on every authentication, so a token rewritten by whatever
	// issues it is used from the next connection on. Exactly one of a token and OAuth.
	Token     Secret `yaml:"token"`
	TokenFile string `yaml:"tokenFile"`
	// OAuth is OAUTHBEARER's other token source: the OAuth 2.0 client-credentials flow.
	OAuth OAuthConfig `yaml:"oauth"`
	// Extensions are OAUTHBEARER's SASL extensions (RFC 7628), sent with the token: Confluent
	// Cloud wants logicalCluster and identityPoolId.
	Extensions map[string]string `yaml:"extensions,omitempty"`
	// AWS is AWS_MSK_IAM's region and, optionally, static keys from files.
	AWS AWSConfig `yaml:"aws"`
}

// SASL mechanisms.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
	SASLOAuthBearer = "OAUTHBEARER"
	SASLAWSMSKIAM   = "AWS_MSK_IAM"
)

// OAuthConfig is the OAuth 2.0 client-credentials flow (RFC 6749 section 4.4): the connector
// asks TokenURL for an access token with its client id and secret, and asks again shortly
// before the token expires. Kafka's OAUTHBEARER and the schema registry's bearer
// authentication use it. TokenURL empty means it is not used.
type OAuthConfig struct {
	TokenURL string `yaml:"tokenURL"`
	ClientID string `yaml:"clientId"`
	// ClientSecret is the secret, read from ClientSecretFile at load time when that is set;
	// the file is read again before each token request.
	ClientSecret     Secret   `yaml:"clientSecret"`
	ClientSecretFile string   `yaml:"clientSecretFile"`
	Scope            []string `yaml:"scope,omitempty"`
	// TLS is the token endpoint's own TLS configuration (its CA, a client certificate).
	TLS TLSConfig `yaml:"tls"`
	// AllowInsecureHTTP lets the client secret go to an http:// TokenURL: an explicit opt-in,
	// still warned about.
	AllowInsecureHTTP bool `yaml:"allowInsecureHTTP"`
}

func (o *OAuthConfig) isSet() bool {
	return o.TokenURL != "" || o.ClientID != "" || o.ClientSecret != "" || o.ClientSecretFile != "" ||
		len(o.Scope) > 0 || o.TLS.isSet() || o.AllowInsecureHTTP
}

// AWSConfig is AWS_MSK_IAM's: the region, and where credentials come from. Without the key
// files they come from the AWS SDK's default chain (environment, web identity token file as
// IRSA sets on EKS, shared config and credentials files, container and instance roles).
type AWSConfig struct {
	Region string `yaml:"region"`
	// AccessKeyIDFile and SecretAccessKeyFile (and SessionTokenFile, optional) are static
	// credentials, read again on every authentication.
	AccessKeyIDFile     string `yaml:"accessKeyIdFile"`
	SecretAccessKeyFile string `yaml:"secretAccessKeyFile"`
	SessionTokenFile    string `yaml:"sessionTokenFile"`
}

func (a *AWSConfig) isSet() bool {
	return a.Region != "" || a.AccessKeyIDFile != "" || a.SecretAccessKeyFile != "" || a.SessionTokenFile != ""
}

// RegistryConfig is how the connector reaches the Confluent Schema Registry.
type RegistryConfig struct {
	URLs      []string        `yaml:"urls"`
	BasicAuth BasicAuthConfig `yaml:"basicAuth"`
	// BearerToken is the token, read from BearerTokenFile at load time when that is set.
	BearerToken     Secret    `yaml:"bearerToken"`
	BearerTokenFile string    `yaml:"bearerTokenFile"`
	TLS             TLSConfig `yaml:"tls"`
	// AllowInsecureHTTP lets credentials (basic auth, a bearer token) go to an http:// URL.
	// It is an explicit opt-in, still warned about, because the default must not leak them.
	AllowInsecureHTTP bool `yaml:"allowInsecureHTTP"`
	// OAuth fetches the bearer token with the client-credentials flow, refreshed before it
	// expires, instead of a static bearerToken.
	OAuth OAuthConfig `yaml:"oauth"`
}

// BasicAuthConfig is HTTP basic authentication.
type BasicAuthConfig struct {
	Username string `yaml:"username"`
	// Password is the password, read from PasswordFile at load time when that is set.
	Password     Secret `yaml:"password"`
	PasswordFile string `yaml:"passwordFile"`
}

// TenantConfig is one 8x8 tenant the connector writes to.
type TenantConfig struct {
	// Name is the tenant's key under tenants, which pipelines refer to.
	Name    string `yaml:"-"`
	Cluster string `yaml:"cluster"`
	// URL is the baseURL key: an endpoint used instead of a cluster's (a simulator, a proxy).
	URL      string `yaml:"baseURL"`
	TenantID string `yaml:"tenantId"`
	// Token is the action token, read from TokenFile at load time when that is set.
	Token             Secret        `yaml:"token"`
	TokenFile         string        `yaml:"tokenFile"`
	RequestsPerMinute int           `yaml:"requestsPerMinute"`
	RequestTimeout    time.Duration `yaml:"requestTimeout"`
	CAFile            string        `yaml:"caFile"`
	AllowInsecureHTTP bool          `yaml:"allowInsecureHTTP"`
	BodyForm          string        `yaml:"bodyForm"`
	Concurrency       int           `yaml:"concurrency"`
	// NotFoundGrace is how long after its data's time a record may still meet a 404 (the
	// interaction not yet known to 8x8) and be tried again, before it is dead-lettered as
	// not_found: a CDC change can reach the connector before the call it belongs to reaches
	// the API.
	NotFoundGrace time.Duration `yaml:"notFoundGrace"`
	// NotFoundWindow is the old name of NotFoundGrace, still accepted with a warning: Load
	// moves its value to NotFoundGrace and leaves it zero. Setting both is an error.
	NotFoundWindow time.Duration `yaml:"notFoundWindow,omitempty"`
	// OnGone is what a later record for an identifier whose 404 was final does: OnGoneDeadLetter
	// (class not_found) or OnGoneSkip (reason gone). Either way no request is made.
	OnGone string `yaml:"onGone"`
	// MaxRetryElapsed bounds how long transient errors are retried; 0 retries forever.
	MaxRetryElapsed time.Duration `yaml:"maxRetryElapsed"`
}

// What TenantConfig.BodyForm may be: the contract's {"variables":[...]}, or
// {"data":[{"variables":[...]}]} seen in other published copies of the vendor's docs.
const (
	BodyFormVariables = "variables"
	BodyFormData      = "data"
)

// What TenantConfig.OnGone may be: connector's OnGone constants, named here for the same reasons
// as the onDelete values.
const (
	OnGoneDeadLetter = "deadLetter"
	OnGoneSkip       = "skip"
)

// BaseURL is the scheme and host (and any path prefix) requests go to, without a trailing
// slash: https://{cluster}.8x8.com, or the baseURL as configured.
func (t *TenantConfig) BaseURL() string {
	if t.URL != "" {
		return strings.TrimRight(t.URL, "/")
	}
	return "https://" + t.Cluster + ".8x8.com"
}

// PipelineConfig is one pipeline: topics in, variables of one tenant out.
type PipelineConfig struct {
	Name       string       `yaml:"name"`
	Topics     []string     `yaml:"topics"`
	Tenant     string       `yaml:"tenant"`
	Decode     DecodeConfig `yaml:"decode"`
	Filter     string       `yaml:"filter"`
	Identifier string       `yaml:"identifier"`
	// OnDelete is what a delete or a tombstone does: OnDeleteSkip or OnDeleteProcess.
	OnDelete string `yaml:"onDelete"`
	// OnLookupMiss is what a record whose lookup(table, key) found no row does: skip, retry
	// (for LookupRetryWindow) or deadLetter.
	OnLookupMiss      string        `yaml:"onLookupMiss"`
	LookupRetryWindow time.Duration `yaml:"lookupRetryWindow"`
	// RecordTime is an expression giving when the record's data changed (source.ts_ms for
	// Debezium); empty: the Kafka timestamp. A record's age is counted from it.
	RecordTime string `yaml:"recordTime"`
	// MaxRecordAge, when positive, is how old a record may be and still be sent; an older
	// one is handled as OnStale says, since the call it belongs to is most likely over.
	// 0 turns the check off.
	MaxRecordAge time.Duration `yaml:"maxRecordAge"`
	// OnStale is what a record older than MaxRecordAge does: OnStaleSkip or
	// OnStaleDeadLetter.
	OnStale string `yaml:"onStale"`
	// RequireActive, when set, sends only to identifiers whose interaction a lookup table
	// says is active; nil sends to every identifier.
	RequireActive *RequireActiveConfig `yaml:"requireActive,omitempty"`
	Variables     []VariableConfig     `yaml:"variables"`
}

// RequireActiveConfig is a pipeline's requireActive: how to tell that an identifier's
// interaction is still active (transform.ActiveSpec says what it means).
type RequireActiveConfig struct {
	// Table names the lookup table of active interactions (one of Config.Tables).
	Table string `yaml:"table"`
	// Expression returns bool with identifier bound; empty: lookup(table, identifier) != nil.
	Expression string `yaml:"expression"`
}

// What PipelineConfig.OnStale may be: connector's OnStale constants, named here for the same
// reasons as the onDelete values.
const (
	OnStaleSkip       = "skip"
	OnStaleDeadLetter = "deadLetter"
)

// What PipelineConfig.OnDelete may be. What they mean is transform's (transform.OnDeleteSkip
// and OnDeleteProcess); config names them only to default and to place a wrong value at its
// line, and internal/app's tests check that the two packages accept the same values.
const (
	OnDeleteSkip    = "skip"
	OnDeleteProcess = "process"
)

// What PipelineConfig.OnLookupMiss may be: transform's LookupMiss constants, named here for the
// same reasons as the onDelete values.
const (
	LookupMissSkip       = "skip"
	LookupMissRetry      = "retry"
	LookupMissDeadLetter = "deadLetter"
)

// TableConfig is one lookup table: the rows of a topic, keyed and projected, which pipelines
// read with lookup(name, key) or, when it has an id, lookupAll(name, key).
type TableConfig struct {
	Name   string       `yaml:"name"`
	Topic  string       `yaml:"topic"`
	Decode DecodeConfig `yaml:"decode"`
	// Key is the expression of the key lookups use.
	Key string `yaml:"key"`
	// Value is the projection: field name to expression; only these fields are kept.
	Value map[string]string `yaml:"value"`
	// ID, when set, makes the table many-valued: one key, several rows told apart by their id.
	ID string `yaml:"id"`
	// Delete is a condition removing the entry (tombstones and op "d" always do).
	Delete     string        `yaml:"delete"`
	TTL        time.Duration `yaml:"ttl"`
	MaxEntries int           `yaml:"maxEntries"`
	MaxBytes   ByteSize      `yaml:"maxBytes"`
}

// setDefaults is called on each table before its keys are decoded.
func (t *TableConfig) setDefaults() {
	*t = TableConfig{
		Decode:     DecodeConfig{Format: FormatAvroRegistry, MaxRecordBytes: DefaultMaxRecordBytes},
		MaxEntries: 1_000_000,
		MaxBytes:   256 * MiB,
	}
}

// DecodeConfig says how record values (and keys) of a pipeline's topics are decoded.
type DecodeConfig struct {
	Format string `yaml:"format"`
	// SchemaFile is the .avsc writer schema, for FormatAvro only.
	SchemaFile string `yaml:"schemaFile"`
	// MaxRecordBytes is the largest value decoded (default 1MiB); a larger one is
	// dead-lettered (a table skips it) without being decoded, so that one oversized or hostile
	// record costs no more memory than the bound allows.
	MaxRecordBytes ByteSize `yaml:"maxRecordBytes"`
	// KeyFormat says how keys are read: KeyFormatString (the key's bytes as a string) or
	// FormatAvroRegistry (a Confluent-framed key decoded through the registry, as Debezium's
	// Avro converter writes keys; an unframed key stays a string). Default: avro-registry
	// when Format is, string otherwise.
	KeyFormat string `yaml:"keyFormat"`
}

// KeyFormatString is DecodeConfig.KeyFormat for keys read as strings.
const KeyFormatString = "string"

// DefaultMaxRecordBytes is decode.maxRecordBytes when it is not set: Kafka's default
// message.max.bytes.
const DefaultMaxRecordBytes = MiB

// What DecodeConfig.Format may be.
const (
	FormatAvroRegistry = "avro-registry" // Confluent framing, schema fetched by id
	FormatAvro         = "avro"          // bare Avro binary with the schema in SchemaFile
	FormatJSON         = "json"
)

// VariableConfig is one variable of a pipeline as written in YAML.
type VariableConfig struct {
	Name        string     `yaml:"name"`
	Value       string     `yaml:"value"`
	IVR         BoolAttr   `yaml:"ivr"`
	Display     BoolAttr   `yaml:"display"`
	DisplayName StringAttr `yaml:"displayName"`
	DataType    StringAttr `yaml:"dataType"`
	Privacy     BoolAttr   `yaml:"privacy"`
	// Note documents the variable; nothing reads it. check asks for one on a variable both
	// private and tested by the IVR, to say why (README, "Before you deploy").
	Note string `yaml:"note"`
}

// DeadLetterConfig is where records that cannot succeed go.
type DeadLetterConfig struct {
	// Topic empty means a record that cannot succeed stops its pipeline instead.
	Topic string `yaml:"topic"`
	// IncludeValue copies the record's original value into its dead letter (the default). For
	// a pipeline with a private variable (privacy: true, or a privacy expression) it applies
	// only with IncludePrivateValues: otherwise the dead letter of such a pipeline carries no
	// value, only the source coordinates and augment.value.omitted: privacy, and replay
	// re-reads the record from its source topic.
	IncludeValue bool `yaml:"includeValue"`
	// IncludePrivateValues lets IncludeValue copy the values of pipelines with a private
	// variable too. It is off by default: a private value would otherwise sit in a second
	// topic, with its own retention and readers. It requires IncludeValue.
	IncludePrivateValues bool `yaml:"includePrivateValues"`
}

// ConnectorConfig holds the engine's bounds and timers.
type ConnectorConfig struct {
	ShutdownTimeout        time.Duration `yaml:"shutdownTimeout"`
	CommitInterval         time.Duration `yaml:"commitInterval"`
	MaxPendingRecords      int           `yaml:"maxPendingRecords"`
	MaxPendingBytes        ByteSize      `yaml:"maxPendingBytes"`
	Linger                 time.Duration `yaml:"linger"`
	MaxVariablesPerRequest int           `yaml:"maxVariablesPerRequest"`
}

// BudgetConfig says how each tenant's requestsPerMinute is kept across replicas.
type BudgetConfig struct {
	// Coordination is CoordinationKafka (the default: one budget per tenant for every
	// replica, replay and deployment writing to the same account, kept in the budget ledger
	// topic) or CoordinationLocal (each replica paces its own share: self-inflicted 429s on
	// every restart and rebalance).
	Coordination string       `yaml:"coordination"`
	Ledger       LedgerConfig `yaml:"ledger"`
}

// What BudgetConfig.Coordination may be.
const (
	CoordinationKafka = "kafka"
	CoordinationLocal = "local"
)

// LedgerConfig is the budget ledger (coordination kafka).
type LedgerConfig struct {
	// Topic is the ledger topic, shared by every deployment writing to the same accounts.
	Topic string `yaml:"topic"`
	// MemberID names this process in the ledger; empty: the host name (the pod's name) and a
	// random per-process suffix.
	MemberID string `yaml:"memberId"`
	// AllowUnsafeTopic accepts a ledger topic that may lose an acknowledged record (fewer
	// than 3 replicas, min.insync.replicas below 2, unclean leader election): one-node test
	// clusters only. Warned about.
	AllowUnsafeTopic bool `yaml:"allowUnsafeTopic"`
	// ClaimValidity bounds how long a grant may wait to be used.
	ClaimValidity time.Duration `yaml:"claimValidity"`
	// MaxRequestTimeout is the largest requestTimeout of any deployment writing to the
	// ledger (at least every tenant's here): it bounds how long the ledger holds an uncertain
	// attempt and how far back a starting member reads.
	MaxRequestTimeout time.Duration `yaml:"maxRequestTimeout"`
	// UnavailableAfter is how long the ledger may be unreachable before /readyz says so.
	UnavailableAfter time.Duration `yaml:"unavailableAfter"`
}

// DefaultLedgerTopic is budget.ledger.topic's default (ledger.DefaultTopic; this package does
// not import the ledger).
const DefaultLedgerTopic = "augment-connector.budget"

// LoggingConfig configures the zap logger.
type LoggingConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// MetricsConfig configures the Prometheus endpoint.
type MetricsConfig struct {
	// Listen is host:port; empty disables the endpoint.
	Listen string `yaml:"listen"`
}

// TracingConfig is OpenTelemetry tracing of each record's journey (README "Tracing"),
// exported over OTLP/HTTP. Off unless Enabled. The SDK's own OTEL_EXPORTER_OTLP_* and
// OTEL_BSP_* environment variables apply to what is not set here.
type TracingConfig struct {
	Enabled bool `yaml:"enabled"`
	// Endpoint is the collector's OTLP/HTTP base URL (http://otel-collector:4318): spans go to
	// its path + /v1/traces. Empty: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
	// OTEL_EXPORTER_OTLP_ENDPOINT, else https://localhost:4318.
	Endpoint string `yaml:"endpoint"`
	// Insecure allows an http:// endpoint (spans and headers in clear): an explicit opt-in.
	// With no endpoint it makes the SDK's endpoint plain HTTP.
	Insecure bool `yaml:"insecure"`
	// TLS is an https:// endpoint's TLS configuration (its CA, a client certificate).
	TLS TLSConfig `yaml:"tls"`
	// Headers are sent with every export (a collector's or vendor's API key): values may be
	// ${ENV} secrets and are never printed.
	Headers map[string]Secret `yaml:"headers,omitempty"`
	// SampleRatio is the share of records traced when the record carries no sampled
	// traceparent (parent-based: a record's own sampling decision is kept). 0 to 1.
	SampleRatio float64 `yaml:"sampleRatio"`
	// ServiceName is the service.name resource attribute.
	ServiceName string `yaml:"serviceName"`
}

// DefaultServiceName is tracing.serviceName's default.
const DefaultServiceName = "augment-connector"

// defaultConfig is what a key left out means. Defaults are set before decoding, so an explicit
// zero (concurrency: 0) is seen by validation instead of being replaced.
func defaultConfig() *Config {
	return &Config{
		Kafka: KafkaConfig{
			GroupID:           "augment-connector",
			ClientID:          "augment-connector",
			StartOffset:       StartEarliest,
			FetchMaxBytes:     1 * MiB, // the connector's: fetching far ahead of the pending bound buys nothing
			FetchMaxWait:      500 * time.Millisecond,
			SessionTimeout:    45 * time.Second,
			RebalanceTimeout:  60 * time.Second,
			HeartbeatInterval: 3 * time.Second,
			DialTimeout:       10 * time.Second,
			IsolationLevel:    ReadCommitted,
			GroupProtocol:     GroupProtocolClassic,
		},
		DeadLetter: DeadLetterConfig{IncludeValue: true},
		Connector: ConnectorConfig{
			ShutdownTimeout:        30 * time.Second,
			CommitInterval:         time.Second,
			MaxPendingRecords:      1_000_000, // the connector's defaults: see connector.Options
			MaxPendingBytes:        192 * MiB,
			MaxVariablesPerRequest: 50,
		},
		Budget: BudgetConfig{
			Coordination: CoordinationKafka,
			Ledger: LedgerConfig{
				Topic:             DefaultLedgerTopic,
				ClaimValidity:     2 * time.Second,
				MaxRequestTimeout: 30 * time.Second,
				UnavailableAfter:  10 * time.Second,
			},
		},
		Logging: LoggingConfig{Level: "info", Format: "json"},
		Metrics: MetricsConfig{Listen: ":9090"},
		Tracing: TracingConfig{SampleRatio: 1, ServiceName: DefaultServiceName},
	}
}

// setDefaults is called on each tenant before its keys are decoded.
func (t *TenantConfig) setDefaults() {
	*t = TenantConfig{
		RequestsPerMinute: 100, // the contract's limit per tenant
		RequestTimeout:    10 * time.Second,
		BodyForm:          BodyFormVariables,
		Concurrency:       16,
		NotFoundGrace:     30 * time.Second,
		OnGone:            OnGoneDeadLetter,
	}
}

// setDefaults is called on each pipeline before its keys are decoded.
func (p *PipelineConfig) setDefaults() {
	*p = PipelineConfig{
		Decode:            DecodeConfig{Format: FormatAvroRegistry, MaxRecordBytes: DefaultMaxRecordBytes},
		OnDelete:          OnDeleteSkip,
		OnLookupMiss:      LookupMissSkip,
		LookupRetryWindow: 30 * time.Second,
		OnStale:           OnStaleSkip,
	}
}

// Load reads, expands, decodes and validates the config file at path. Relative file names in it
// (caFile, tokenFile, schemaFile, ...) are resolved against the file's directory. A config that
// does not validate is reported as Errors.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return newLoader(path, filepath.Dir(path), os.LookupEnv, readSmallFile).load(data)
}

// Parse is Load for a config already in memory; name is used in errors, and relative file names
// are resolved against the working directory.
func Parse(data []byte, name string) (*Config, error) {
	return newLoader(name, "", os.LookupEnv, readSmallFile).load(data)
}

// File is the config file's name as given to Load or Parse, for messages about it.
func (c *Config) File() string { return c.file }

// Line is the line of the key at path ("tenants.main.token", "pipelines[0].variables[2].ivr"),
// or of its nearest ancestor present in the file, or 0.
func (c *Config) Line(path string) int {
	for {
		if l, ok := c.lines[path]; ok {
			return l
		}
		if path == "" {
			return 0
		}
		path = parentPath(path)
	}
}

// ErrorAt builds an error at path in the same form validation uses, for problems found after
// loading (an expression that does not compile). Collect them in Errors and return Errors.Err().
func (c *Config) ErrorAt(path, msg string) *Error {
	return &Error{File: c.file, Line: c.Line(path), Path: path, Msg: msg}
}

// Redact returns msg about the value at path, or, when that value was expanded from the
// environment and msg quotes any of the values expanded (as expr's compile errors quote the
// source), a message that says so and quotes the value as written instead. msg is returned as
// is for a value written out in the file.
func (c *Config) Redact(path, msg string) string {
	var w written
	var ok bool
	for _, p := range [...]string{path, path + ".expr"} {
		if w, ok = c.written[p]; ok {
			break
		}
	}
	if !ok {
		return msg
	}
	// The first line: expr appends a snippet of the (expanded) source on further lines.
	first, _, _ := strings.Cut(msg, "\n")
	if quotesAny(first, w.values) {
		first = "message withheld: it quotes a value from the environment"
	}
	return fmt.Sprintf("%s; as written: %q", first, w.text)
}

// quotesAny reports whether msg holds one of values, or a word of one (a run of three or more
// letters, digits or underscores): a compiler quotes the token it failed on, not the whole
// value. It errs on the side of withholding.
func quotesAny(msg string, values []string) bool {
	for _, v := range values {
		if strings.Contains(msg, v) {
			return true
		}
		for _, w := range strings.FieldsFunc(v, func(r rune) bool {
			return !(r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r))
		}) {
			if len(w) >= 3 && strings.Contains(msg, w) {
				return true
			}
		}
	}
	return false
}

// parentPath drops the last ".key" or "[i]" of a key path.
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}
