package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/goleak"
	"go.yaml.in/yaml/v3"
)

func TestMain(m *testing.M) {
	// The tests start kgo clients and httptest servers; both must be gone afterwards.
	goleak.VerifyTestMain(m)
}

// base is a minimal valid config; the line numbers in the tests below refer to it.
const base = `kafka:
  brokers: [localhost:9092]
schemaRegistry:
  urls: [http://localhost:8081]
tenants:
  main:
    cluster: vcc-na12
    tenantId: acme
    token: s3cr3t-token
pipelines:
  - name: customers
    topics: [dbserver1.crm.customers]
    tenant: main
    identifier: after.interaction_id
    variables:
      - name: _customerTier
        value: after.tier
        displayName: Customer Tier
        dataType: text
`

func envFrom(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// parse parses data as test.yaml with the given environment and the real file system.
func parse(data string, env map[string]string) (*Config, error) {
	return newLoader("test.yaml", "", envFrom(env), readSmallFile).load([]byte(data))
}

// errLines returns the lines of err, which must be Errors.
func errLines(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error is %T, not Errors: %v", err, err)
	}
	return strings.Split(errs.Error(), "\n")
}

// baseWant is base as loaded: every default applied.
func baseWant() *Config {
	return &Config{
		Kafka: KafkaConfig{
			Brokers:           []string{"localhost:9092"},
			GroupID:           "augment-connector",
			ClientID:          "augment-connector",
			StartOffset:       "earliest",
			FetchMaxBytes:     1048576,
			FetchMaxWait:      500 * time.Millisecond,
			SessionTimeout:    45 * time.Second,
			RebalanceTimeout:  60 * time.Second,
			HeartbeatInterval: 3 * time.Second,
			DialTimeout:       10 * time.Second,
			IsolationLevel:    "read_committed",
			GroupProtocol:     "classic",
		},
		SchemaRegistry: RegistryConfig{URLs: []string{"http://localhost:8081"}},
		Tenants: map[string]*TenantConfig{"main": {
			Name:              "main",
			Cluster:           "vcc-na12",
			TenantID:          "acme",
			Token:             "s3cr3t-token",
			RequestsPerMinute: 100,
			RequestTimeout:    10 * time.Second,
			BodyForm:          "variables",
			Concurrency:       16,
			NotFoundGrace:     30 * time.Second,
			OnGone:            "deadLetter",
		}},
		Pipelines: []PipelineConfig{{
			Name:              "customers",
			Topics:            []string{"dbserver1.crm.customers"},
			Tenant:            "main",
			Decode:            DecodeConfig{Format: "avro-registry", MaxRecordBytes: MiB, KeyFormat: "avro-registry"},
			Identifier:        "after.interaction_id",
			OnDelete:          "skip",
			OnLookupMiss:      "skip",
			LookupRetryWindow: 30 * time.Second,
			OnStale:           "skip",
			Variables: []VariableConfig{{
				Name:        "_customerTier",
				Value:       "after.tier",
				DisplayName: StringAttr{Value: "Customer Tier"},
				DataType:    StringAttr{Value: "text"},
			}},
		}},
		DeadLetter: DeadLetterConfig{IncludeValue: true},
		Connector: ConnectorConfig{
			ShutdownTimeout:        30 * time.Second,
			CommitInterval:         time.Second,
			MaxPendingRecords:      1000000,
			MaxPendingBytes:        201326592,
			MaxVariablesPerRequest: 50,
		},
		Budget: BudgetConfig{
			Coordination: "kafka",
			Ledger: LedgerConfig{
				Topic:             "augment-connector.budget",
				ClaimValidity:     2 * time.Second,
				MaxRequestTimeout: 30 * time.Second,
				UnavailableAfter:  10 * time.Second,
			},
		},
		Logging: LoggingConfig{Level: "info", Format: "json"},
		Metrics: MetricsConfig{Listen: ":9090"},
		Tracing: TracingConfig{SampleRatio: 1, ServiceName: "augment-connector"},
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := parse(base, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(baseWant(), cfg, cmpopts.IgnoreUnexported(Config{})); diff != "" {
		t.Errorf("loaded config (-want +got):\n%s", diff)
	}
}

// An explicit zero or false is kept, not replaced by the default.
func TestExplicitZeroKept(t *testing.T) {
	cfg, err := parse(base+`deadLetter: {includeValue: false}
connector: {linger: 0, maxPendingBytes: 512KiB}
metrics: {listen: ""}
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := []any{cfg.DeadLetter.IncludeValue, cfg.Connector.Linger, cfg.Connector.MaxPendingBytes, cfg.Metrics.Listen}
	want := []any{false, time.Duration(0), ByteSize(512 * 1024), ""}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// pipeline is a second pipeline to append to base (at line 20).
func pipeline(name, topic string) string {
	return fmt.Sprintf("  - name: %s\n    topics: [%s]\n    tenant: main\n    identifier: x\n    variables: [{name: _a, value: x}]\n", name, topic)
}

func TestBrokenConfigs(t *testing.T) {
	tests := []struct {
		name     string
		from, to string // replaced once in base; from must occur
		extra    string // appended to base
		data     *string
		want     []string
	}{
		{name: "unknown key with a case suggestion and the missing key",
			from: "    tenantId: acme", to: "    tenantID: acme",
			want: []string{
				`test.yaml:6: tenants.main.tenantId: is required`,
				`test.yaml:8: tenants.main: unknown key "tenantID" (did you mean "tenantId"?)`,
			}},
		{name: "unknown top-level key with a spelling suggestion",
			extra: "tenant:\n  x: 1\n",
			want:  []string{`test.yaml:20: unknown key "tenant" (did you mean "tenants"?)`}},
		{name: "unknown key without suggestion",
			from: "  brokers: [localhost:9092]", to: "  brokers: [localhost:9092]\n  zookeeper: zk:2181",
			want: []string{`test.yaml:3: kafka: unknown key "zookeeper"`}},
		{name: "duplicate key",
			extra: "kafka:\n  brokers: [x:9092]\n",
			want:  []string{`test.yaml:20: kafka: is defined twice (first at line 1)`}},
		{name: "list given a mapping",
			from: "brokers: [localhost:9092]", to: "brokers: {a: b}",
			want: []string{`test.yaml:2: kafka.brokers: must be a list, got a mapping`}},
		{name: "no brokers",
			from: "brokers: [localhost:9092]", to: "brokers: []",
			want: []string{`test.yaml:2: kafka.brokers: at least one seed broker is required`}},
		{name: "broker with a scheme",
			from: "brokers: [localhost:9092]", to: "brokers: [kafka://localhost:9092]",
			want: []string{`test.yaml:2: kafka.brokers[0]: must be host:port, without a scheme`}},
		{name: "start offset",
			from: "  brokers: [localhost:9092]", to: "  brokers: [localhost:9092]\n  startOffset: beginning",
			want: []string{`test.yaml:3: kafka.startOffset: must be earliest or latest, got "beginning"`}},
		{name: "sasl mechanism",
			from: "  brokers: [localhost:9092]", to: "  brokers: [localhost:9092]\n  sasl: {mechanism: GSSAPI, username: u, password: p}",
			want: []string{`test.yaml:3: kafka.sasl.mechanism: must be PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER or AWS_MSK_IAM, got "GSSAPI"`}},
		{name: "group protocol",
			from: "  brokers: [localhost:9092]", to: "  brokers: [localhost:9092]\n  groupProtocol: next-gen",
			want: []string{`test.yaml:3: kafka.groupProtocol: must be classic or consumer, got "next-gen"`}},
		{name: "isolation level",
			from: "  brokers: [localhost:9092]", to: "  brokers: [localhost:9092]\n  isolationLevel: committed",
			want: []string{`test.yaml:3: kafka.isolationLevel: must be read_committed or read_uncommitted, got "committed"`}},
		{name: "sasl plain without tls",
			from: "  brokers: [localhost:9092]", to: "  brokers: [localhost:9092]\n  sasl:\n    mechanism: PLAIN\n    username: u\n    password: p",
			want: []string{`test.yaml:4: kafka.sasl.mechanism: PLAIN without kafka.tls sends the password unencrypted; enable kafka.tls or set kafka.sasl.allowPlaintext: true to allow it`}},
		{name: "registry basic auth over http",
			from: "  urls: [http://localhost:8081]", to: "  urls: [https://r:8081, http://localhost:8081]\n  basicAuth: {username: u, password: p}",
			want: []string{`test.yaml:4: schemaRegistry.urls[1]: uses http://, which sends the registry credentials unencrypted; set schemaRegistry.allowInsecureHTTP: true to allow it`}},
		{name: "registry bearer token over http",
			from: "  urls: [http://localhost:8081]", to: "  urls: [http://localhost:8081]\n  bearerToken: t0k3n",
			want: []string{`test.yaml:4: schemaRegistry.urls[0]: uses http://, which sends the registry credentials unencrypted; set schemaRegistry.allowInsecureHTTP: true to allow it`}},
		{name: "sasl credentials without mechanism",
			from: "  brokers: [localhost:9092]", to: "  brokers: [localhost:9092]\n  sasl: {username: u, password: p}",
			want: []string{`test.yaml:3: kafka.sasl.mechanism: is required when a username or password is set (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)`}},
		{name: "sasl mechanism without password",
			from: "  brokers: [localhost:9092]", to: "  brokers: [localhost:9092]\n  sasl: {mechanism: SCRAM-SHA-256, username: u}",
			want: []string{`test.yaml:3: kafka.sasl.password: one of password or passwordFile is required`}},
		{name: "sasl mechanism without username",
			from: "  brokers: [localhost:9092]", to: "  brokers: [localhost:9092]\n  sasl: {mechanism: SCRAM-SHA-256, password: p}",
			want: []string{`test.yaml:3: kafka.sasl.username: is required with a SASL mechanism`}},
		{name: "tls CA file missing",
			from: "  brokers: [localhost:9092]", to: "  brokers: [localhost:9092]\n  tls: {enabled: true, caFile: /nonexistent/ca.pem}",
			want: []string{`test.yaml:3: kafka.tls.caFile: reading file: stat /nonexistent/ca.pem: no such file or directory`}},
		{name: "tls cert without key",
			from: "  brokers: [localhost:9092]", to: "  brokers: [localhost:9092]\n  tls: {enabled: true, certFile: /x.pem}",
			want: []string{`test.yaml:3: kafka.tls.keyFile: is required when certFile is set`}},
		{name: "tls keys without enabled",
			from: "  brokers: [localhost:9092]", to: "  brokers: [localhost:9092]\n  tls: {caFile: /x.pem}",
			want: []string{`test.yaml:3: kafka.tls.enabled: is false but other kafka.tls keys are set; set enabled: true to use TLS`}},
		{name: "duration without unit",
			from: "  brokers: [localhost:9092]", to: "  brokers: [localhost:9092]\n  sessionTimeout: 45",
			want: []string{`test.yaml:3: kafka.sessionTimeout: must be a duration like 500ms, 10s or 1m, got "45"`}},
		{name: "heartbeat not below session timeout",
			from: "  brokers: [localhost:9092]", to: "  brokers: [localhost:9092]\n  heartbeatInterval: 1m",
			want: []string{`test.yaml:3: kafka.heartbeatInterval: must be less than kafka.sessionTimeout (45s), got 1m0s`}},
		{name: "byte size",
			from: "  brokers: [localhost:9092]", to: "  brokers: [localhost:9092]\n  fetchMaxBytes: 64 megs",
			want: []string{`test.yaml:3: kafka.fetchMaxBytes: must be a size in bytes like 67108864, 512KiB or 64MiB`}},
		{name: "fetch wait too short",
			from: "  brokers: [localhost:9092]", to: "  brokers: [localhost:9092]\n  fetchMaxWait: 1ms",
			want: []string{`test.yaml:3: kafka.fetchMaxWait: must be between 10ms and 596h31m23.647s, got 1ms`}},
		{name: "registry URLs needed",
			from: "urls: [http://localhost:8081]", to: "urls: []",
			want: []string{`test.yaml:4: schemaRegistry.urls: at least one URL is required when a pipeline decodes avro-registry`}},
		{name: "registry URL without scheme",
			from: "urls: [http://localhost:8081]", to: "urls: [localhost:8081]",
			want: []string{`test.yaml:4: schemaRegistry.urls[0]: must be an http:// or https:// URL`}},
		{name: "registry basic and bearer",
			from: "  urls: [http://localhost:8081]", to: "  urls: [https://localhost:8081]\n  basicAuth: {username: u, password: p}\n  bearerToken: t",
			want: []string{`test.yaml:6: schemaRegistry.bearerToken: set only one of basicAuth and bearerToken`}},
		{name: "cluster and baseURL",
			from: "    cluster: vcc-na12", to: "    cluster: vcc-na12\n    baseURL: https://127.0.0.1:8443",
			want: []string{`test.yaml:8: tenants.main.baseURL: set only one of cluster and baseURL`}},
		{name: "neither cluster nor baseURL",
			from: "    cluster: vcc-na12", to: "    requestsPerMinute: 100",
			want: []string{`test.yaml:6: tenants.main.cluster: one of cluster or baseURL is required`}},
		{name: "cluster pattern",
			from: "cluster: vcc-na12", to: "cluster: VCC_NA12",
			want: []string{`test.yaml:7: tenants.main.cluster: must be a cluster name like vcc-na12 (lower-case letters, digits and '-'), got "VCC_NA12"`}},
		{name: "http baseURL not allowed",
			from: "cluster: vcc-na12", to: "baseURL: http://127.0.0.1:8080",
			want: []string{`test.yaml:7: tenants.main.baseURL: uses http://, which sends the token unencrypted; set allowInsecureHTTP: true to allow it`}},
		{name: "baseURL of another scheme",
			from: "cluster: vcc-na12", to: "baseURL: ftp://127.0.0.1",
			want: []string{`test.yaml:7: tenants.main.baseURL: must be an absolute https:// URL like https://127.0.0.1:8443`}},
		{name: "tenantId empty",
			from: "tenantId: acme", to: `tenantId: ""`,
			want: []string{`test.yaml:8: tenants.main.tenantId: is required`}},
		{name: "tenantId with colon",
			from: "tenantId: acme", to: `tenantId: "ac:me"`,
			want: []string{`test.yaml:8: tenants.main.tenantId: must not contain ':' (it is the user name of HTTP basic authentication)`}},
		{name: "token and tokenFile",
			from: "    token: s3cr3t-token", to: "    token: s3cr3t-token\n    tokenFile: /run/token",
			want: []string{`test.yaml:10: tenants.main.tokenFile: set only one of token and tokenFile`}},
		{name: "no token",
			from: "    token: s3cr3t-token\n", to: "",
			want: []string{`test.yaml:6: tenants.main.token: one of token or tokenFile is required`}},
		{name: "token file missing",
			from: "    token: s3cr3t-token", to: "    tokenFile: /nonexistent/token",
			want: []string{`test.yaml:9: tenants.main.tokenFile: reading file: stat /nonexistent/token: no such file or directory`}},
		{name: "requests per minute zero",
			from: "    token: s3cr3t-token", to: "    token: s3cr3t-token\n    requestsPerMinute: 0",
			want: []string{`test.yaml:10: tenants.main.requestsPerMinute: must be at least 1, got 0`}},
		{name: "requests per minute not a number",
			from: "    token: s3cr3t-token", to: "    token: s3cr3t-token\n    requestsPerMinute: lots",
			want: []string{`test.yaml:10: tenants.main.requestsPerMinute: must be an integer, got "lots"`}},
		{name: "concurrency too high",
			from: "    token: s3cr3t-token", to: "    token: s3cr3t-token\n    concurrency: 300",
			want: []string{`test.yaml:10: tenants.main.concurrency: must be between 1 and 256, got 300`}},
		{name: "body form",
			from: "    token: s3cr3t-token", to: "    token: s3cr3t-token\n    bodyForm: wrapped",
			want: []string{`test.yaml:10: tenants.main.bodyForm: must be variables or data, got "wrapped"`}},
		{name: "negative duration",
			from: "    token: s3cr3t-token", to: "    token: s3cr3t-token\n    requestTimeout: -1s",
			want: []string{`test.yaml:10: tenants.main.requestTimeout: must not be negative, got "-1s"`}},
		{name: "no tenants",
			from: "tenants:\n  main:\n    cluster: vcc-na12\n    tenantId: acme\n    token: s3cr3t-token\n", to: "tenants: {}\n",
			want: []string{
				`test.yaml:5: tenants: at least one tenant is required`,
				`test.yaml:9: pipelines[0].tenant: tenant "main" is not defined under tenants`,
			}},
		{name: "pipeline without name",
			from: "  - name: customers\n    topics", to: "  - topics",
			want: []string{`test.yaml:11: pipelines[0].name: is required`}},
		{name: "duplicate pipeline name",
			extra: pipeline("customers", "other"),
			want:  []string{`test.yaml:20: pipelines[1].name: "customers" is already the name of pipelines[0]`}},
		{name: "topic consumed twice",
			extra: pipeline("second", "dbserver1.crm.customers"),
			want:  []string{`test.yaml:21: pipelines[1].topics[0]: topic "dbserver1.crm.customers" is already consumed by pipelines[0]; a topic may feed only one pipeline`}},
		{name: "no topics",
			from: "topics: [dbserver1.crm.customers]", to: "topics: []",
			want: []string{`test.yaml:12: pipelines[0].topics: at least one topic is required`}},
		{name: "invalid topic",
			from: "topics: [dbserver1.crm.customers]", to: "topics: [bad topic]",
			want: []string{`test.yaml:12: pipelines[0].topics[0]: "bad topic" is not a valid Kafka topic name`}},
		{name: "unknown tenant",
			from: "tenant: main", to: "tenant: other",
			want: []string{`test.yaml:13: pipelines[0].tenant: tenant "other" is not defined under tenants`}},
		{name: "decode format",
			from: "    tenant: main", to: "    tenant: main\n    decode: {format: protobuf}",
			want: []string{`test.yaml:14: pipelines[0].decode.format: must be avro-registry, avro or json, got "protobuf"`}},
		{name: "avro without schema file",
			from: "    tenant: main", to: "    tenant: main\n    decode: {format: avro}",
			want: []string{`test.yaml:14: pipelines[0].decode.schemaFile: is required when format is avro`}},
		{name: "schema file for json",
			from: "    tenant: main", to: "    tenant: main\n    decode: {format: json, schemaFile: customer.avsc}",
			want: []string{`test.yaml:14: pipelines[0].decode.schemaFile: is only used when format is avro`}},
		{name: "keyFormat unknown",
			from: "    tenant: main", to: "    tenant: main\n    decode: {format: json, keyFormat: avro}",
			want: []string{`test.yaml:14: pipelines[0].decode.keyFormat: must be string or avro-registry, got "avro"`}},
		{name: "keyFormat avro-registry needs a registry",
			data: new(strings.Replace(strings.Replace(base, "  urls: [http://localhost:8081]", "  urls: []", 1),
				"    tenant: main", "    tenant: main\n    decode: {format: json, keyFormat: avro-registry}", 1)),
			want: []string{`test.yaml:4: schemaRegistry.urls: at least one URL is required when a pipeline decodes avro-registry`}},
		{name: "maxRecordBytes of 0",
			from: "    tenant: main", to: "    tenant: main\n    decode:\n      format: json\n      maxRecordBytes: 0",
			want: []string{`test.yaml:16: pipelines[0].decode.maxRecordBytes: must be greater than 0, got 0`}},
		{name: "maxRecordBytes not a size",
			from: "    tenant: main", to: "    tenant: main\n    decode: {format: json, maxRecordBytes: lots}",
			want: []string{`test.yaml:14: pipelines[0].decode.maxRecordBytes: must be a size in bytes like 67108864, 512KiB or 64MiB`}},
		{name: "no identifier",
			from: "identifier: after.interaction_id", to: `identifier: ""`,
			want: []string{`test.yaml:14: pipelines[0].identifier: is required`}},
		{name: "onDelete",
			from: "    tenant: main", to: "    tenant: main\n    onDelete: drop",
			want: []string{`test.yaml:14: pipelines[0].onDelete: must be skip or process, got "drop"`}},
		{name: "no variables",
			from: "    variables:\n      - name: _customerTier\n        value: after.tier\n        displayName: Customer Tier\n        dataType: text\n", to: "    variables: []\n",
			want: []string{`test.yaml:15: pipelines[0].variables: at least one variable is required`}},
		{name: "variable name without underscore",
			from: "name: _customerTier", to: "name: customerTier",
			want: []string{`test.yaml:16: pipelines[0].variables[0].name: must start with underscore, got "customerTier"`}},
		{name: "variable name too long",
			from: "name: _customerTier", to: "name: _customerTierIsAVeryLongName",
			want: []string{`test.yaml:16: pipelines[0].variables[0].name: must be at most 25 characters, got "_customerTierIsAVeryLongName"`}},
		{name: "duplicate variable name",
			from: "        dataType: text", to: "        dataType: text\n      - name: _customerTier\n        value: after.x",
			want: []string{`test.yaml:20: pipelines[0].variables[1].name: variable "_customerTier" is already defined at pipelines[0].variables[0]`}},
		{name: "variable without value",
			from: "        value: after.tier", to: "        ivr: true",
			want: []string{`test.yaml:16: pipelines[0].variables[0].value: is required`}},
		{name: "data type",
			from: "dataType: text", to: "dataType: string",
			want: []string{`test.yaml:19: pipelines[0].variables[0].dataType: must be one of text, number, phone, date, time, currency, got "string"`}},
		{name: "display name too long",
			from: "displayName: Customer Tier", to: "displayName: The tier of this customer, in words",
			want: []string{`test.yaml:18: pipelines[0].variables[0].displayName: must be at most 30 characters, got 35`}},
		{name: "bool attribute",
			from: "        dataType: text", to: "        dataType: text\n        ivr: maybe",
			want: []string{`test.yaml:20: pipelines[0].variables[0].ivr: must be true, false or {expr: "..."}`}},
		{name: "expression attribute with unknown key",
			from: "        dataType: text", to: "        dataType: text\n        display: {exp: after.vip}",
			want: []string{`test.yaml:20: pipelines[0].variables[0].display: unknown key "exp": an expression is written {expr: "..."}`}},
		{name: "empty expression",
			from: "        dataType: text", to: "        dataType: text\n        privacy: {expr: \"\"}",
			want: []string{`test.yaml:20: pipelines[0].variables[0].privacy: expr must not be empty`}},
		{name: "dead-letter topic is an input",
			extra: "deadLetter:\n  topic: dbserver1.crm.customers\n",
			want:  []string{`test.yaml:21: deadLetter.topic: topic "dbserver1.crm.customers" is consumed by pipelines[0]; the dead-letter topic must not be an input`}},
		{name: "includePrivateValues without includeValue",
			extra: "deadLetter:\n  topic: dlq\n  includeValue: false\n  includePrivateValues: true\n",
			want:  []string{`test.yaml:23: deadLetter.includePrivateValues: requires deadLetter.includeValue: true (private values cannot be kept when no value is)`}},
		{name: "too many variables per request",
			extra: "connector:\n  maxVariablesPerRequest: 51\n",
			want:  []string{`test.yaml:21: connector.maxVariablesPerRequest: must be between 1 and 50, got 51`}},
		{name: "commit interval",
			extra: "connector:\n  commitInterval: 10ms\n",
			want:  []string{`test.yaml:21: connector.commitInterval: must be at least 100ms, got 10ms`}},
		{name: "log level",
			extra: "logging: {level: verbose}\n",
			want:  []string{`test.yaml:20: logging.level: must be debug, info, warn or error, got "verbose"`}},
		{name: "metrics listen",
			extra: "metrics: {listen: 9090}\n",
			want:  []string{`test.yaml:20: metrics.listen: must be host:port like ":9090", got "9090"`}},
		{name: "unset environment variable",
			from: "token: s3cr3t-token", to: "token: ${NOPE}",
			want: []string{`test.yaml:9: tenants.main.token: environment variable NOPE is not set (use ${NOPE:-default} for a default)`}},
		{name: "table without key or value",
			extra: "tables:\n  - name: customers\n    topic: crm.customers\n    decode: {format: json}\n",
			want: []string{
				`test.yaml:21: tables[0].key: is required`,
				`test.yaml:21: tables[0].value: at least one field is required (name: expression)`,
			}},
		{name: "table name, topic, field name and bounds",
			extra: "tables:\n  - name: bad name\n    topic: bad topic\n    decode: {format: json}\n    key: after.id\n    value: {tier: after.tier, 1x: after.y, note: \"\"}\n    ttl: -1m\n    maxEntries: 0\n    maxBytes: 10\n",
			want: []string{
				`test.yaml:21: tables[0].name: must contain only letters, digits, '.', '_' and '-', got "bad name"`,
				`test.yaml:22: tables[0].topic: "bad topic" is not a valid Kafka topic name`,
				`test.yaml:25: tables[0].value.1x: a field name must be a letter or '_' then letters, digits and '_'`,
				`test.yaml:25: tables[0].value.note: an expression is required`,
				`test.yaml:26: tables[0].ttl: must not be negative, got "-1m"`,
				`test.yaml:27: tables[0].maxEntries: must be at least 1, got 0`,
				`test.yaml:28: tables[0].maxBytes: must be at least 1KiB, got 10`,
			}},
		{name: "table maxRecordBytes of 0",
			extra: "tables:\n  - {name: t, topic: calls, decode: {format: json, maxRecordBytes: 0}, key: after.id, value: {a: after.a}}\n",
			want:  []string{`test.yaml:21: tables[0].decode.maxRecordBytes: must be greater than 0, got 0`}},
		{name: "two tables of one name, one topic decoded two ways",
			extra: "tables:\n  - {name: t, topic: calls, decode: {format: json}, key: after.id, value: {a: after.a}}\n  - {name: t, topic: calls, key: after.id, value: {a: after.a}}\n",
			want: []string{
				`test.yaml:22: tables[1].name: "t" is already the name of tables[0]`,
				`test.yaml:22: tables[1].decode: tables[0] reads topic "calls" too, with another decode; tables of one topic decode it alike`,
			}},
		{name: "onLookupMiss",
			from: "    tenant: main", to: "    tenant: main\n    onLookupMiss: ignore",
			want: []string{`test.yaml:14: pipelines[0].onLookupMiss: must be skip, retry or deadLetter, got "ignore"`}},
		{name: "lookup retry without a window",
			from: "    tenant: main", to: "    tenant: main\n    onLookupMiss: retry\n    lookupRetryWindow: 0s",
			want: []string{`test.yaml:15: pipelines[0].lookupRetryWindow: must be greater than 0 with onLookupMiss: retry`}},
		{name: "onStale",
			from: "    tenant: main", to: "    tenant: main\n    onStale: drop",
			want: []string{`test.yaml:14: pipelines[0].onStale: must be skip or deadLetter, got "drop"`}},
		{name: "negative maxRecordAge",
			from: "    tenant: main", to: "    tenant: main\n    maxRecordAge: -5m",
			want: []string{`test.yaml:14: pipelines[0].maxRecordAge: must not be negative, got "-5m"`}},
		{name: "requireActive without a table",
			from: "    tenant: main", to: "    tenant: main\n    requireActive:\n      expression: identifier != \"\"",
			want: []string{`test.yaml:14: pipelines[0].requireActive.table: is required (the lookup table of active interactions)`}},
		{name: "requireActive of a table not defined",
			from: "    tenant: main", to: "    tenant: main\n    requireActive:\n      table: activeCalls",
			extra: "tables:\n  - {name: activeInteractions, topic: calls, decode: {format: json}, key: after.id, value: {a: after.a}}\n",
			want:  []string{`test.yaml:15: pipelines[0].requireActive.table: "activeCalls" is not defined under tables`}},
		{name: "requireActive not a mapping",
			from: "    tenant: main", to: "    tenant: main\n    requireActive: activeCalls",
			want: []string{`test.yaml:14: pipelines[0].requireActive: must be a mapping, got a single value`}},
		{name: "onGone",
			from: "    tenantId: acme", to: "    tenantId: acme\n    onGone: drop",
			want: []string{`test.yaml:9: tenants.main.onGone: must be deadLetter or skip, got "drop"`}},
		{name: "notFoundGrace of 0",
			from: "    tenantId: acme", to: "    tenantId: acme\n    notFoundGrace: 0s",
			want: []string{`test.yaml:9: tenants.main.notFoundGrace: must be greater than 0 (default 30s)`}},
		{name: "notFoundGrace and its old name",
			from: "    tenantId: acme", to: "    tenantId: acme\n    notFoundGrace: 1m\n    notFoundWindow: 2m",
			want: []string{`test.yaml:10: tenants.main.notFoundWindow: is the old name of notFoundGrace; set only notFoundGrace`}},
		{name: "merge keys",
			extra: "logging:\n  <<: {level: info}\n",
			want:  []string{`test.yaml:21: logging: merge keys (<<) are not supported`}},
		{name: "syntax error",
			from: "tenantId: acme", to: "tenantId: acme: x",
			want: []string{`test.yaml:8: invalid YAML: mapping values are not allowed in this context`}},
		{name: "empty file", data: new(""),
			want: []string{`test.yaml: config is empty`}},
		{name: "not a mapping", data: new("- a\n- b\n"),
			want: []string{`test.yaml:1: must be a mapping, got a list`}},
		{name: "only comments", data: new("# nothing\n"),
			want: []string{`test.yaml: config is empty`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := base
			switch {
			case tt.data != nil:
				data = *tt.data
			case tt.from != "":
				if !strings.Contains(base, tt.from) {
					t.Fatalf("base does not contain %q", tt.from)
				}
				data = strings.Replace(base, tt.from, tt.to, 1)
			}
			data += tt.extra
			cfg, err := parse(data, nil)
			if cfg != nil {
				t.Errorf("got a config with errors")
			}
			if diff := cmp.Diff(tt.want, errLines(t, err)); diff != "" {
				t.Errorf("errors (-want +got):\n%s\nconfig:\n%s", diff, data)
			}
		})
	}
	if len(tests) < 30 {
		t.Errorf("only %d broken configs", len(tests))
	}
}

func TestEveryProblemReported(t *testing.T) {
	data := strings.NewReplacer(
		"brokers: [localhost:9092]", "brokers: [kafka://localhost:9092]",
		"cluster: vcc-na12", "cluster: VCC",
		"name: _customerTier", "name: customerTier",
	).Replace(base)
	_, err := parse(data, nil)
	want := []string{
		`test.yaml:2: kafka.brokers[0]: must be host:port, without a scheme`,
		`test.yaml:7: tenants.main.cluster: must be a cluster name like vcc-na12 (lower-case letters, digits and '-'), got "VCC"`,
		`test.yaml:16: pipelines[0].variables[0].name: must start with underscore, got "customerTier"`,
	}
	if diff := cmp.Diff(want, errLines(t, err)); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

func TestLineAndErrorAt(t *testing.T) {
	cfg, err := parse(base, nil)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]int{
		"kafka":                                  1,
		"kafka.brokers[0]":                       2,
		"tenants.main.token":                     9,
		"pipelines[0]":                           11,
		"pipelines[0].variables[0].dataType":     19,
		"pipelines[0].variables[0].ivr":          16, // absent: its variable's line
		"pipelines[0].filter":                    11,
		"nowhere":                                0,
		"pipelines[0].variables[0].ivr.expr[10]": 16,
	} {
		if got := cfg.Line(path); got != want {
			t.Errorf("Line(%q) = %d, want %d", path, got, want)
		}
	}
	var errs Errors
	errs = append(errs, cfg.ErrorAt("pipelines[0].variables[0].value", "unknown name tier2"), cfg.ErrorAt("pipelines[0].identifier", "bad"))
	if diff := cmp.Diff("test.yaml:14: pipelines[0].identifier: bad\ntest.yaml:17: pipelines[0].variables[0].value: unknown name tier2", errs.Err().Error()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if err := (Errors{}).Err(); err != nil {
		t.Errorf("empty Errors.Err() = %v", err)
	}
}

func TestByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want ByteSize
		err  bool
	}{
		{in: "67108864", want: 64 * MiB},
		{in: "64MiB", want: 64 * MiB},
		{in: "512KiB", want: 512 * KiB},
		{in: "512 KiB", want: 512 * KiB},
		{in: "1GiB", want: GiB},
		{in: "2MB", want: 2_000_000},
		{in: "10B", want: 10},
		{in: "1_000", want: 1000},
		{in: "64mib", err: true},
		{in: "-1", err: true},
		{in: "1.5GiB", err: true},
		{in: "MiB", err: true},
		{in: "99999999999999999999", err: true},
		{in: "9000000000TiB", err: true},
	}
	for _, tt := range tests {
		var got ByteSize
		err := yaml.Unmarshal([]byte(tt.in), &got)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("%q: got %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
	for in, want := range map[ByteSize]string{64 * MiB: "64MiB", GiB: "1GiB", 3 * KiB: "3KiB", 1536: "1536", 1000: "1000", 0: "0"} {
		if got := in.String(); got != want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", int64(in), got, want)
		}
	}
}

func TestRelativeFilesResolvedAgainstConfigDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte("file-token\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "c.avsc"), []byte(`{"type":"record","name":"c","fields":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	data := strings.NewReplacer(
		"token: s3cr3t-token", "tokenFile: token",
		"    tenant: main", "    tenant: main\n    decode: {format: avro, schemaFile: c.avsc}",
	).Replace(base)
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	tn := cfg.Tenants["main"]
	got := []string{string(tn.Token), tn.TokenFile, cfg.Pipelines[0].Decode.SchemaFile}
	want := []string{"file-token", filepath.Join(dir, "token"), filepath.Join(dir, "c.avsc")}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	if _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing file: %v, want ErrNotExist", err)
	}
}

const examplePath = "../../config.example.yaml"

func TestExampleLoads(t *testing.T) {
	t.Setenv("ACME_TOKEN", "example-token")
	cfg, err := Load(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	want := baseWant()
	want.Tenants["main"].Token = "example-token"
	want.Pipelines[0].Filter = `op != "r"`
	want.Pipelines[0].RecordTime = "source.ts_ms"
	want.Pipelines[0].MaxRecordAge = 15 * time.Minute
	want.Tracing.Endpoint = "http://otel-collector:4318"
	want.Tracing.Insecure = true
	want.Pipelines[0].Variables = []VariableConfig{{
		Name:        "_customerTier",
		Value:       "after.tier",
		IVR:         BoolAttr{Value: true},
		Display:     BoolAttr{Value: true},
		DisplayName: StringAttr{Value: "Customer Tier"},
		DataType:    StringAttr{Value: "text"},
	}, {
		Name:        "_accountBalance",
		Value:       "after.balance",
		IVR:         BoolAttr{Expr: `after.tier == "VIP"`},
		Display:     BoolAttr{Value: true},
		DisplayName: StringAttr{Expr: `after.tier == "VIP" ? "VIP balance" : "Balance"`},
		DataType:    StringAttr{Value: "currency"},
	}, {
		Name:    "_accountPin",
		Value:   "after.pin",
		Privacy: BoolAttr{Value: true},
	}}
	want.Tables = []TableConfig{{
		Name:       "customers",
		Topic:      "dbserver1.crm.customers",
		Decode:     DecodeConfig{Format: "avro-registry", MaxRecordBytes: MiB, KeyFormat: "avro-registry"},
		Key:        "after.id",
		Value:      map[string]string{"tier": "after.tier", "balance": "after.balance", "openOrders": "after.open_orders"},
		MaxEntries: 1_000_000,
		MaxBytes:   256 * MiB,
	}, {
		Name:       "activeInteractions",
		Topic:      "cc.interactions",
		Decode:     DecodeConfig{Format: "json", MaxRecordBytes: MiB, KeyFormat: "string"},
		Key:        "after.customer_id",
		Value:      map[string]string{"interactionId": "after.interaction_id"},
		ID:         "after.interaction_id",
		Delete:     `after.event == "ended"`,
		TTL:        4 * time.Hour,
		MaxEntries: 1_000_000,
		MaxBytes:   256 * MiB,
	}}
	want.Pipelines = append(want.Pipelines, PipelineConfig{
		Name:              "call-start",
		Topics:            []string{"cc.interactions"},
		Tenant:            "main",
		Decode:            DecodeConfig{Format: "json", MaxRecordBytes: MiB, KeyFormat: "string"},
		Filter:            `after.event == "started"`,
		Identifier:        "after.interaction_id",
		OnDelete:          "skip",
		OnLookupMiss:      "retry",
		LookupRetryWindow: 10 * time.Second,
		OnStale:           "skip",
		Variables: []VariableConfig{{
			Name:        "_customerTier",
			Value:       `lookup("customers", after.customer_id).tier`,
			IVR:         BoolAttr{Value: true},
			Display:     BoolAttr{Value: true},
			DisplayName: StringAttr{Value: "Customer Tier"},
		}, {
			Name:        "_openOrders",
			Value:       `lookup("customers", after.customer_id).openOrders`,
			Display:     BoolAttr{Value: true},
			DisplayName: StringAttr{Value: "Open Orders"},
			DataType:    StringAttr{Value: "number"},
		}},
	})
	want.DeadLetter.Topic = "augment-dlq"
	if diff := cmp.Diff(want, cfg, cmpopts.IgnoreUnexported(Config{})); diff != "" {
		t.Errorf("example (-want +got):\n%s", diff)
	}

	// Round trip: marshal and parse again. The token marshals masked.
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "example-token") {
		t.Fatalf("marshalled config contains the token:\n%s", out)
	}
	again, err := parse(string(out), nil)
	if err != nil {
		t.Fatalf("%v\nmarshalled:\n%s", err, out)
	}
	if got := again.Tenants["main"].Token; got != maskedSecret {
		t.Errorf("round-tripped token = %q, want %q", string(got), maskedSecret)
	}
	again.Tenants["main"].Token = cfg.Tenants["main"].Token
	if diff := cmp.Diff(cfg, again, cmpopts.IgnoreUnexported(Config{})); diff != "" {
		t.Errorf("round trip (-loaded +again):\n%s", diff)
	}
}

// TestExampleDocumentsEveryKey fails when a key is added to Config but not to the example.
func TestExampleDocumentsEveryKey(t *testing.T) {
	b, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || reflect.PointerTo(t).Implements(unmarshaler) || t == reflect.TypeFor[time.Duration]() {
			return
		}
		for i := range t.NumField() {
			f := t.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name != "" && name != "-" {
				keys = append(keys, name)
			}
			if name != "-" || opts == "inline" {
				walk(f.Type)
			}
		}
	}
	walk(reflect.TypeFor[Config]())
	if len(keys) < 60 {
		t.Fatalf("found only %d keys: %v", len(keys), keys)
	}
	// requireActive's keys are shown commented out: set, they would skip every sample record
	// (their calls are in no table). notFoundWindow is notFoundGrace's deprecated name.
	commented := map[string]bool{"table": true, "expression": true}
	deprecated := map[string]bool{"notFoundWindow": true}
	for _, k := range keys {
		prefix := `(?m)^[ \-]*`
		if commented[k] {
			prefix = `(?m)^[ \-]*(#[ \-]*)?`
		}
		if deprecated[k] {
			continue
		}
		if !regexp.MustCompile(prefix + regexp.QuoteMeta(k) + `:`).Match(b) {
			t.Errorf("config.example.yaml does not set key %q", k)
		}
	}
}

// TestIncludePrivateValues: the setting loads with includeValue. Which pipelines count as
// private is transform's to say (Pipeline.MayBePrivate, tested there).
func TestIncludePrivateValues(t *testing.T) {
	cfg, err := parse(base+"deadLetter:\n  topic: dlq\n  includePrivateValues: true\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.DeadLetter.IncludeValue || !cfg.DeadLetter.IncludePrivateValues {
		t.Errorf("deadLetter = %+v, want includeValue and includePrivateValues", cfg.DeadLetter)
	}
}

// TestInsecureOptIns checks that each opt-in makes its setting load, and that every insecure
// setting allowed (opted in or not) is listed by Warnings with its line, never with a secret.
func TestInsecureOptIns(t *testing.T) {
	tests := []struct {
		name     string
		from, to string // replaced once in base
		want     []string
	}{
		{name: "secure base", want: nil},
		{name: "kafka insecureSkipVerify",
			from: "  brokers: [localhost:9092]", to: "  brokers: [localhost:9092]\n  tls:\n    enabled: true\n    insecureSkipVerify: true",
			want: []string{"test.yaml:5: kafka.tls.insecureSkipVerify: the brokers' certificates are not verified; anyone on the path can impersonate them and read the records and credentials"}},
		{name: "sasl plain opted in",
			from: "  brokers: [localhost:9092]", to: "  brokers: [localhost:9092]\n  sasl:\n    mechanism: PLAIN\n    username: u\n    password: pw-s3cr3t\n    allowPlaintext: true",
			want: []string{"test.yaml:7: kafka.sasl.allowPlaintext: SASL PLAIN without TLS: the password is sent unencrypted"}},
		{name: "sasl plain over tls is not warned",
			from: "  brokers: [localhost:9092]", to: "  brokers: [localhost:9092]\n  tls: {enabled: true}\n  sasl: {mechanism: PLAIN, username: u, password: pw-s3cr3t}",
			want: nil},
		{name: "sasl scram without tls is not warned",
			from: "  brokers: [localhost:9092]", to: "  brokers: [localhost:9092]\n  sasl: {mechanism: SCRAM-SHA-512, username: u, password: pw-s3cr3t}",
			want: nil},
		{name: "registry http with credentials opted in",
			from: "  urls: [http://localhost:8081]", to: "  urls: [http://localhost:8081]\n  basicAuth: {username: u, password: pw-s3cr3t}\n  allowInsecureHTTP: true",
			want: []string{"test.yaml:6: schemaRegistry.allowInsecureHTTP: schemaRegistry.urls[0] uses http://: the registry credentials are sent unencrypted"}},
		{name: "registry http without credentials is not warned",
			from: "  urls: [http://localhost:8081]", to: "  urls: [http://localhost:8081]\n  allowInsecureHTTP: true",
			want: nil},
		{name: "registry insecureSkipVerify",
			from: "  urls: [http://localhost:8081]", to: "  urls: [https://localhost:8081]\n  tls: {insecureSkipVerify: true}",
			want: []string{"test.yaml:5: schemaRegistry.tls.insecureSkipVerify: the registry's certificate is not verified; anyone on the path can impersonate it and read the credentials"}},
		{name: "tenant http opted in",
			from: "    cluster: vcc-na12", to: "    baseURL: http://127.0.0.1:8080\n    allowInsecureHTTP: true",
			want: []string{"test.yaml:7: tenants.main.baseURL: uses http:// (allowInsecureHTTP: true): the action token and the variables are sent unencrypted"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := base
			if tt.from != "" {
				if !strings.Contains(base, tt.from) {
					t.Fatalf("base does not contain %q", tt.from)
				}
				data = strings.Replace(base, tt.from, tt.to, 1)
			}
			cfg, err := parse(data, nil)
			if err != nil {
				t.Fatalf("parse: %v\nconfig:\n%s", err, data)
			}
			var got []string
			for _, w := range cfg.Warnings() {
				got = append(got, w.String())
				if strings.Contains(w.String(), "s3cr3t") {
					t.Errorf("warning shows a secret: %s", w)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("warnings (-want +got):\n%s\nconfig:\n%s", diff, data)
			}
		})
	}
}

// TestStaleAndGoneSettings: the settings of "spend nothing on calls that are over" load, with
// their defaults, and the old notFoundWindow still works, with a warning at its line.
func TestStaleAndGoneSettings(t *testing.T) {
	tables := "tables:\n  - {name: activeInteractions, topic: calls, decode: {format: json}, key: after.customer_id, id: after.interaction_id, value: {interactionId: after.interaction_id}}\n"
	type got struct {
		RecordTime    string
		MaxRecordAge  time.Duration
		OnStale       string
		RequireActive *RequireActiveConfig
		NotFoundGrace time.Duration
		OnGone        string
		Warnings      []string
	}
	for _, tc := range []struct {
		name     string
		from, to string
		want     got
	}{
		{name: "defaults", from: "    tenant: main", to: "    tenant: main",
			want: got{OnStale: "skip", NotFoundGrace: 30 * time.Second, OnGone: "deadLetter"}},
		{name: "every setting",
			from: "    tenant: main",
			to: "    tenant: main\n    recordTime: source.ts_ms\n    maxRecordAge: 15m\n    onStale: deadLetter\n" +
				"    requireActive:\n      table: activeInteractions\n      expression: identifier in map(lookupAll(\"activeInteractions\", after.id), .interactionId)",
			want: got{RecordTime: "source.ts_ms", MaxRecordAge: 15 * time.Minute, OnStale: "deadLetter",
				RequireActive: &RequireActiveConfig{Table: "activeInteractions", Expression: `identifier in map(lookupAll("activeInteractions", after.id), .interactionId)`},
				NotFoundGrace: 30 * time.Second, OnGone: "deadLetter"}},
		{name: "requireActive with the default expression, tenant settings",
			from: "    tenant: main", to: "    tenant: main\n    requireActive: {table: activeInteractions}",
			want: got{OnStale: "skip", RequireActive: &RequireActiveConfig{Table: "activeInteractions"}, NotFoundGrace: 30 * time.Second, OnGone: "deadLetter"}},
		{name: "notFoundGrace and onGone",
			from: "    tenantId: acme", to: "    tenantId: acme\n    notFoundGrace: 2m\n    onGone: skip",
			want: got{OnStale: "skip", NotFoundGrace: 2 * time.Minute, OnGone: "skip"}},
		{name: "the old notFoundWindow",
			from: "    tenantId: acme", to: "    tenantId: acme\n    notFoundWindow: 45s",
			want: got{OnStale: "skip", NotFoundGrace: 45 * time.Second, OnGone: "deadLetter",
				Warnings: []string{"test.yaml:9: tenants.main.notFoundWindow: is deprecated: it is the old name of notFoundGrace (45s here); rename it"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parse(strings.Replace(base, tc.from, tc.to, 1)+tables, nil)
			if err != nil {
				t.Fatal(err)
			}
			pc, tn := cfg.Pipelines[0], cfg.Tenants["main"]
			g := got{RecordTime: pc.RecordTime, MaxRecordAge: pc.MaxRecordAge, OnStale: pc.OnStale, RequireActive: pc.RequireActive,
				NotFoundGrace: tn.NotFoundGrace, OnGone: tn.OnGone}
			for _, w := range cfg.Warnings() {
				g.Warnings = append(g.Warnings, w.String())
			}
			if diff := cmp.Diff(tc.want, g); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if tn.NotFoundWindow != 0 {
				t.Errorf("NotFoundWindow = %v, want 0 once moved to NotFoundGrace", tn.NotFoundWindow)
			}
		})
	}
}
