package config

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/augment-connector/augment-connector/internal/api"
)

var (
	clusterRE    = regexp.MustCompile(`^[a-z0-9-]+$`)
	tenantNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	pipeNameRE   = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	topicRE      = regexp.MustCompile(`^[A-Za-z0-9._-]{1,249}$`)
)

// maxWireTimeout is the largest timeout Kafka's int32-millisecond fields carry.
const maxWireTimeout = time.Duration(math.MaxInt32) * time.Millisecond

// validate checks everything decoding could not: required keys, ranges, enums, references
// between sections and the files named. It reads secret files into their Secret fields and
// resolves relative file names, so a Config that validates is ready to use.
func (l *loader) validate(c *Config) {
	l.validateKafka(&c.Kafka)
	l.validateRegistry(c)
	l.validateTenants(c)
	l.validateTables(c)
	l.validatePipelines(c)
	l.validateDeadLetter(c)
	l.validateConnector(&c.Connector)
	l.validateBudget(c)
	switch c.Logging.Level {
	case "debug", "info", "warn", "error":
	default:
		l.add("logging.level", "must be debug, info, warn or error, got %s", l.show("logging.level", c.Logging.Level))
	}
	switch c.Logging.Format {
	case "json", "console":
	default:
		l.add("logging.format", "must be json or console, got %s", l.show("logging.format", c.Logging.Format))
	}
	l.validateTracing(&c.Tracing)
	if c.Metrics.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Metrics.Listen); err != nil {
			l.add("metrics.listen", `must be host:port like ":9090", got %s`, l.show("metrics.listen", c.Metrics.Listen))
		}
	}
}

func (l *loader) validateKafka(k *KafkaConfig) {
	if len(k.Brokers) == 0 {
		l.add("kafka.brokers", "at least one seed broker is required")
	}
	for i, b := range k.Brokers {
		p := fmt.Sprintf("kafka.brokers[%d]", i)
		switch {
		case strings.TrimSpace(b) == "":
			l.add(p, "must not be empty")
		case strings.Contains(b, "://"):
			l.add(p, "must be host:port, without a scheme")
		}
	}
	if k.GroupID == "" {
		l.add("kafka.groupId", "must not be empty")
	}
	if k.ClientID == "" || len(k.ClientID) > 256 {
		l.add("kafka.clientId", "must be 1 to 256 characters")
	}
	if k.StartOffset != StartEarliest && k.StartOffset != StartLatest {
		l.add("kafka.startOffset", "must be earliest or latest, got %s", l.show("kafka.startOffset", k.StartOffset))
	}
	if k.TLS.Enabled {
		l.checkTLS("kafka.tls", &k.TLS.TLSConfig)
	} else if k.TLS.isSet() {
		l.add("kafka.tls.enabled", "is false but other kafka.tls keys are set; set enabled: true to use TLS")
	}
	switch k.IsolationLevel {
	case ReadCommitted, ReadUncommitted:
	default:
		l.add("kafka.isolationLevel", "must be read_committed or read_uncommitted, got %s", l.show("kafka.isolationLevel", k.IsolationLevel))
	}
	switch k.GroupProtocol {
	case GroupProtocolClassic, GroupProtocolConsumer:
	default:
		l.add("kafka.groupProtocol", "must be classic or consumer, got %s", l.show("kafka.groupProtocol", k.GroupProtocol))
	}
	l.validateSASL(&k.SASL, k.TLS.Enabled)
	if k.FetchMaxBytes < 1 || k.FetchMaxBytes > GiB {
		l.add("kafka.fetchMaxBytes", "must be between 1 and 1GiB, got %d", k.FetchMaxBytes)
	}
	l.durationIn("kafka.fetchMaxWait", k.FetchMaxWait, 10*time.Millisecond, maxWireTimeout)
	l.durationIn("kafka.sessionTimeout", k.SessionTimeout, 100*time.Millisecond, maxWireTimeout)
	l.durationIn("kafka.rebalanceTimeout", k.RebalanceTimeout, 100*time.Millisecond, maxWireTimeout)
	switch {
	case k.HeartbeatInterval <= 0:
		l.add("kafka.heartbeatInterval", "must be greater than 0")
	case k.HeartbeatInterval >= k.SessionTimeout:
		l.add("kafka.heartbeatInterval", "must be less than kafka.sessionTimeout (%v), got %v", k.SessionTimeout, k.HeartbeatInterval)
	}
	if k.DialTimeout <= 0 {
		l.add("kafka.dialTimeout", "must be greater than 0")
	}
}

func (l *loader) durationIn(path string, d, lo, hi time.Duration) {
	if d < lo || d > hi {
		l.add(path, "must be between %v and %v, got %v", lo, hi, d)
	}
}

func (l *loader) validateSASL(s *SASLConfig, tlsEnabled bool) {
	const p = "kafka.sasl"
	password := s.Username != "" || s.Password != "" || s.PasswordFile != ""
	token := s.Token != "" || s.TokenFile != ""
	switch s.Mechanism {
	case "":
		switch {
		case password:
			l.add(p+".mechanism", "is required when a username or password is set (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)")
		case token || s.OAuth.isSet() || len(s.Extensions) > 0:
			l.add(p+".mechanism", "is required when a token, oauth or extensions are set (OAUTHBEARER)")
		case s.AWS.isSet():
			l.add(p+".mechanism", "is required when aws is set (AWS_MSK_IAM)")
		}
		return
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		l.validateSASLPassword(s, tlsEnabled)
		return
	case SASLOAuthBearer:
		l.validateOAuthBearer(s, tlsEnabled)
	case SASLAWSMSKIAM:
		l.validateAWS(s, tlsEnabled)
	default:
		l.add(p+".mechanism", "must be PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER or AWS_MSK_IAM, got %s", l.show(p+".mechanism", s.Mechanism))
		return
	}
	if password {
		l.add(p+"."+firstSet([]string{"username", "password", "passwordFile"}, s.Username, string(s.Password), s.PasswordFile),
			"is only used with PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, not %s", s.Mechanism)
	}
}

// firstSet returns the key of the first non-empty value.
func firstSet(keys []string, values ...string) string {
	for i, v := range values {
		if v != "" {
			return keys[i]
		}
	}
	return keys[0]
}

func (l *loader) validateSASLPassword(s *SASLConfig, tlsEnabled bool) {
	const p = "kafka.sasl"
	if s.Username == "" {
		l.add(p+".username", "is required with a SASL mechanism")
	}
	if s.Mechanism == SASLPlain && !tlsEnabled && !s.AllowPlaintext {
		// SCRAM never sends the password itself; PLAIN does, readable by anyone on the path.
		l.add(p+".mechanism", "PLAIN without kafka.tls sends the password unencrypted; enable kafka.tls or set kafka.sasl.allowPlaintext: true to allow it")
	}
	l.secret(p, "password", "passwordFile", &s.Password, &s.PasswordFile, true)
	l.onlyWith(s, SASLOAuthBearer, "token", s.Token != "" || s.TokenFile != "")
	l.onlyWith(s, SASLOAuthBearer, "oauth", s.OAuth.isSet())
	l.onlyWith(s, SASLOAuthBearer, "extensions", len(s.Extensions) > 0)
	l.onlyWith(s, SASLAWSMSKIAM, "aws", s.AWS.isSet())
}

// onlyWith reports key, set although it belongs to another mechanism.
func (l *loader) onlyWith(s *SASLConfig, mechanism, key string, set bool) {
	if set {
		if key == "token" && s.Token == "" {
			key = "tokenFile"
		}
		l.add("kafka.sasl."+key, "is only used with mechanism %s, not %s", mechanism, s.Mechanism)
	}
}

func (l *loader) validateOAuthBearer(s *SASLConfig, tlsEnabled bool) {
	const p = "kafka.sasl"
	token := s.Token != "" || s.TokenFile != ""
	switch {
	case token && s.OAuth.isSet():
		key := "tokenFile"
		if s.Token != "" {
			key = "token"
		}
		l.add(p+"."+key, "set only one token source: %s or oauth", key)
	case token:
		l.secret(p, "token", "tokenFile", &s.Token, &s.TokenFile, true)
	case s.OAuth.isSet():
		l.validateOAuth(p+".oauth", &s.OAuth)
	default:
		l.add(p+".mechanism", "OAUTHBEARER needs a token source: tokenFile (a token kept up to date by something else) or oauth (the client-credentials flow)")
	}
	if !tlsEnabled && !s.AllowPlaintext {
		l.add(p+".mechanism", "OAUTHBEARER without kafka.tls sends the token unencrypted; enable kafka.tls or set kafka.sasl.allowPlaintext: true to allow it")
	}
	for _, k := range slices.Sorted(maps.Keys(s.Extensions)) {
		kp := p + ".extensions." + k
		switch v := s.Extensions[k]; {
		case !saslExtKeyRE.MatchString(k) || k == "auth":
			l.add(kp, "an extension name must be letters only, and not auth (RFC 7628)")
		case strings.ContainsFunc(v, func(r rune) bool { return (r < ' ' && r != '\t' && r != '\r' && r != '\n') || r == 0x7f }):
			l.add(kp, "an extension value must hold no control characters")
		}
	}
	l.onlyWith(s, SASLAWSMSKIAM, "aws", s.AWS.isSet())
}

// saslExtKeyRE is an RFC 7628 extension name.
var saslExtKeyRE = regexp.MustCompile(`^[A-Za-z]+$`)

// validateOAuth checks a client-credentials configuration at p and reads its secret file.
func (l *loader) validateOAuth(p string, o *OAuthConfig) {
	u, err := url.Parse(o.TokenURL)
	switch {
	case o.TokenURL == "":
		l.add(p+".tokenURL", "is required with oauth (the token endpoint, https://...)")
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		// Never echo the URL: it might carry credentials.
		l.add(p+".tokenURL", "must be an absolute https:// URL")
	case u.User != nil:
		l.add(p+".tokenURL", "must not contain credentials; use clientId and clientSecretFile")
	case u.Scheme == "http" && !o.AllowInsecureHTTP:
		l.add(p+".tokenURL", "uses http://, which sends the client secret unencrypted; set %s.allowInsecureHTTP: true to allow it", p)
	}
	if o.ClientID == "" {
		l.add(p+".clientId", "is required with oauth")
	}
	l.secret(p, "clientSecret", "clientSecretFile", &o.ClientSecret, &o.ClientSecretFile, true)
	for i, sc := range o.Scope {
		if sc == "" || strings.ContainsAny(sc, " \t\n\"\\") {
			l.add(fmt.Sprintf("%s.scope[%d]", p, i), "must be one scope without spaces or quotes, got %s", l.show(fmt.Sprintf("%s.scope[%d]", p, i), sc))
		}
	}
	if o.TLS.isSet() {
		l.checkTLS(p+".tls", &o.TLS)
	}
}

func (l *loader) validateAWS(s *SASLConfig, tlsEnabled bool) {
	const p = "kafka.sasl"
	a := &s.AWS
	if !tlsEnabled {
		// MSK serves IAM authentication only on its TLS listener (port 9098), and the signed
		// request must not be replayable by anyone on the path.
		l.add(p+".mechanism", "AWS_MSK_IAM requires kafka.tls.enabled: true (MSK serves IAM only over TLS, port 9098)")
	}
	if a.Region == "" {
		l.add(p+".aws.region", "is required with AWS_MSK_IAM (the cluster's region, like eu-west-1)")
	} else if !awsRegionRE.MatchString(a.Region) {
		l.add(p+".aws.region", "must be an AWS region like eu-west-1, got %s", l.show(p+".aws.region", a.Region))
	}
	switch {
	case (a.AccessKeyIDFile == "") != (a.SecretAccessKeyFile == ""):
		if a.AccessKeyIDFile == "" {
			l.add(p+".aws.accessKeyIdFile", "is required when secretAccessKeyFile is set")
		} else {
			l.add(p+".aws.secretAccessKeyFile", "is required when accessKeyIdFile is set")
		}
	case a.AccessKeyIDFile == "" && a.SessionTokenFile != "":
		l.add(p+".aws.sessionTokenFile", "is only used with accessKeyIdFile and secretAccessKeyFile")
	case a.AccessKeyIDFile != "":
		for _, f := range []struct {
			key  string
			file *string
		}{{"accessKeyIdFile", &a.AccessKeyIDFile}, {"secretAccessKeyFile", &a.SecretAccessKeyFile}, {"sessionTokenFile", &a.SessionTokenFile}} {
			if *f.file == "" {
				continue
			}
			*f.file = l.resolve(*f.file)
			b, err := l.readFile(*f.file)
			if err == nil {
				_, err = secretFromFile(*f.file, b)
			}
			if err != nil {
				l.add(p+".aws."+f.key, "%v", err)
			}
		}
	}
	if s.AllowPlaintext {
		l.add(p+".allowPlaintext", "is not allowed with AWS_MSK_IAM, which requires TLS")
	}
	l.onlyWith(s, SASLOAuthBearer, "token", s.Token != "" || s.TokenFile != "")
	l.onlyWith(s, SASLOAuthBearer, "oauth", s.OAuth.isSet())
	l.onlyWith(s, SASLOAuthBearer, "extensions", len(s.Extensions) > 0)
}

// awsRegionRE is the shape of an AWS region name: us-east-1, eu-central-2, us-gov-west-1.
var awsRegionRE = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)

// secret checks that at most one of a secret and its file is set (exactly one when required)
// and reads the file into the secret.
func (l *loader) secret(path, key, fileKey string, s *Secret, file *string, required bool) {
	switch {
	case *s != "" && *file != "":
		l.add(path+"."+fileKey, "set only one of %s and %s", key, fileKey)
	case *file != "":
		*file = l.resolve(*file)
		b, err := l.readFile(*file)
		if err != nil {
			l.add(path+"."+fileKey, "reading file: %v", err)
			return
		}
		v, err := secretFromFile(*file, b)
		if err != nil {
			l.add(path+"."+fileKey, "%v", err)
			return
		}
		*s = v
	case required && *s == "":
		l.add(path+"."+key, "one of %s or %s is required", key, fileKey)
	}
}

// ReadSecretFile reads a secret from a file the way the config loader does (trailing line
// breaks dropped, an empty file refused), for a secret read again at run time: a rotated
// Kubernetes Secret is picked up without a restart. Errors name the file, never its content.
func ReadSecretFile(path string) (Secret, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading file: %w", err)
	}
	return secretFromFile(path, b)
}

func secretFromFile(path string, b []byte) (Secret, error) {
	v := strings.TrimRight(string(b), "\r\n")
	if v == "" {
		return "", fmt.Errorf("file %s is empty", path)
	}
	return Secret(v), nil
}

// checkTLS resolves and loads the files of a TLS configuration.
func (l *loader) checkTLS(path string, t *TLSConfig) {
	if (t.CertFile == "") != (t.KeyFile == "") {
		if t.CertFile == "" {
			l.add(path+".certFile", "is required when keyFile is set")
		} else {
			l.add(path+".keyFile", "is required when certFile is set")
		}
		return
	}
	t.CAFile, t.CertFile, t.KeyFile = l.resolve(t.CAFile), l.resolve(t.CertFile), l.resolve(t.KeyFile)
	if _, key, err := t.build(l.readFile); err != nil {
		l.add(path+"."+key, "%v", err)
	}
}

func (l *loader) validateRegistry(c *Config) {
	r := &c.SchemaRegistry
	const p = "schemaRegistry"
	needed := slices.ContainsFunc(c.Pipelines, func(pc PipelineConfig) bool {
		return pc.Decode.Format == FormatAvroRegistry || pc.Decode.KeyFormat == FormatAvroRegistry
	})
	if needed && len(r.URLs) == 0 {
		l.add(p+".urls", "at least one URL is required when a pipeline decodes avro-registry")
	}
	if !needed && slices.ContainsFunc(c.Tables, func(tc TableConfig) bool {
		return tc.Decode.Format == FormatAvroRegistry || tc.Decode.KeyFormat == FormatAvroRegistry
	}) && len(r.URLs) == 0 {
		l.add(p+".urls", "at least one URL is required when a table decodes avro-registry")
	}
	for i, s := range r.URLs {
		up := fmt.Sprintf("%s.urls[%d]", p, i)
		u, err := url.Parse(s)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			l.add(up, "must be an http:// or https:// URL")
		case u.User != nil:
			l.add(up, "must not contain credentials; use schemaRegistry.basicAuth")
		}
	}
	ba := &r.BasicAuth
	if ba.Username != "" {
		l.secret(p+".basicAuth", "password", "passwordFile", &ba.Password, &ba.PasswordFile, true)
	} else if ba.Password != "" || ba.PasswordFile != "" {
		l.add(p+".basicAuth.username", "is required when a password is set")
	}
	l.secret(p, "bearerToken", "bearerTokenFile", &r.BearerToken, &r.BearerTokenFile, false)
	if ba.Username != "" && r.BearerToken != "" {
		l.add(p+".bearerToken", "set only one of basicAuth and bearerToken")
	}
	if r.OAuth.isSet() {
		switch {
		case ba.Username != "":
			l.add(p+".oauth", "set only one of basicAuth and oauth")
		case r.BearerToken != "" || r.BearerTokenFile != "":
			l.add(p+".oauth", "set only one of bearerToken and oauth")
		}
		l.validateOAuth(p+".oauth", &r.OAuth)
	}
	if r.hasCredentials() && !r.AllowInsecureHTTP {
		for i, s := range r.URLs {
			if u, err := url.Parse(s); err == nil && u.Scheme == "http" && u.Host != "" && u.User == nil {
				l.add(fmt.Sprintf("%s.urls[%d]", p, i), "uses http://, which sends the registry credentials unencrypted; set schemaRegistry.allowInsecureHTTP: true to allow it")
			}
		}
	}
	if r.TLS.isSet() {
		l.checkTLS(p+".tls", &r.TLS)
	}
}

func (l *loader) validateTenants(c *Config) {
	if len(c.Tenants) == 0 {
		l.add("tenants", "at least one tenant is required")
	}
	for _, name := range slices.Sorted(maps.Keys(c.Tenants)) {
		t, p := c.Tenants[name], "tenants."+name
		if !tenantNameRE.MatchString(name) {
			l.add(p, "a tenant name must contain only letters, digits, '_' and '-'")
		}
		switch {
		case t.Cluster != "" && t.URL != "":
			l.add(p+".baseURL", "set only one of cluster and baseURL")
		case t.Cluster == "" && t.URL == "":
			l.add(p+".cluster", "one of cluster or baseURL is required")
		case t.Cluster != "" && !clusterRE.MatchString(t.Cluster):
			l.add(p+".cluster", "must be a cluster name like vcc-na12 (lower-case letters, digits and '-'), got %s", l.show(p+".cluster", t.Cluster))
		case t.URL != "":
			l.checkBaseURL(p, t)
		}
		switch {
		case t.TenantID == "":
			l.add(p+".tenantId", "is required")
		case strings.Contains(t.TenantID, ":"):
			l.add(p+".tenantId", "must not contain ':' (it is the user name of HTTP basic authentication)")
		}
		l.secret(p, "token", "tokenFile", &t.Token, &t.TokenFile, true)
		if t.RequestsPerMinute < 1 {
			l.add(p+".requestsPerMinute", "must be at least 1, got %d", t.RequestsPerMinute)
		}
		if t.RequestTimeout <= 0 {
			l.add(p+".requestTimeout", "must be greater than 0")
		}
		if t.CAFile != "" {
			t.CAFile = l.resolve(t.CAFile)
			if _, _, err := (&TLSConfig{CAFile: t.CAFile}).build(l.readFile); err != nil {
				l.add(p+".caFile", "%v", err)
			}
		}
		if t.BodyForm != BodyFormVariables && t.BodyForm != BodyFormData {
			l.add(p+".bodyForm", "must be variables or data, got %s", l.show(p+".bodyForm", t.BodyForm))
		}
		if t.Concurrency < 1 || t.Concurrency > 256 {
			l.add(p+".concurrency", "must be between 1 and 256, got %d", t.Concurrency)
		}
		l.validateNotFound(p, t)
	}
}

// validateNotFound checks notFoundGrace and onGone, and moves the deprecated notFoundWindow to
// notFoundGrace (Config.Warnings names it).
func (l *loader) validateNotFound(p string, t *TenantConfig) {
	_, grace := l.lines[p+".notFoundGrace"]
	if _, window := l.lines[p+".notFoundWindow"]; window {
		if grace {
			l.add(p+".notFoundWindow", "is the old name of notFoundGrace; set only notFoundGrace")
		} else {
			t.NotFoundGrace = t.NotFoundWindow
			grace = true
		}
		t.NotFoundWindow = 0
	}
	if t.NotFoundGrace <= 0 {
		key := ".notFoundGrace"
		if _, ok := l.lines[p+key]; !ok {
			key = ".notFoundWindow"
		}
		// 0 would not turn the grace off (every 404 would dead-letter a record whose call is
		// about to appear); refuse it rather than mean something else.
		l.add(p+key, "must be greater than 0 (default 30s)")
	}
	switch t.OnGone {
	case OnGoneDeadLetter, OnGoneSkip:
	default:
		l.add(p+".onGone", "must be deadLetter or skip, got %s", l.show(p+".onGone", t.OnGone))
	}
}

func (l *loader) checkBaseURL(p string, t *TenantConfig) {
	// Messages never echo the URL: url.Parse errors quote it, and it might carry credentials.
	u, err := url.Parse(t.URL)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		l.add(p+".baseURL", "must be an absolute https:// URL like https://127.0.0.1:8443")
	case u.User != nil:
		l.add(p+".baseURL", "must not contain credentials; use tenantId and token")
	case u.RawQuery != "" || u.Fragment != "":
		l.add(p+".baseURL", "must not have a query or fragment")
	case u.Scheme == "http" && !t.AllowInsecureHTTP:
		l.add(p+".baseURL", "uses http://, which sends the token unencrypted; set allowInsecureHTTP: true to allow it")
	}
}

// uniqueName checks the name of list[i] (at path p): required, made of letters, digits, '.',
// '_' and '-', and not already taken by an earlier element (names maps a name to its index).
func (l *loader) uniqueName(p, list, name string, i int, names map[string]int) {
	switch j, dup := names[name]; {
	case name == "":
		l.add(p+".name", "is required")
	case !pipeNameRE.MatchString(name):
		l.add(p+".name", "must contain only letters, digits, '.', '_' and '-', got %s", l.show(p+".name", name))
	case dup:
		l.add(p+".name", "%q is already the name of %s[%d]", name, list, j)
	default:
		names[name] = i
	}
}

func (l *loader) validatePipelines(c *Config) {
	if len(c.Pipelines) == 0 {
		l.add("pipelines", "at least one pipeline is required")
	}
	names := map[string]int{}
	topics := map[string]int{}
	for i := range c.Pipelines {
		pc, p := &c.Pipelines[i], fmt.Sprintf("pipelines[%d]", i)
		l.uniqueName(p, "pipelines", pc.Name, i, names)
		if len(pc.Topics) == 0 {
			l.add(p+".topics", "at least one topic is required")
		}
		for k, topic := range pc.Topics {
			tp := fmt.Sprintf("%s.topics[%d]", p, k)
			switch j, dup := topics[topic]; {
			case !topicRE.MatchString(topic):
				l.add(tp, "%s is not a valid Kafka topic name", l.show(tp, topic))
			case dup && j == i:
				l.add(tp, "topic %q is listed twice", topic)
			case dup:
				l.add(tp, "topic %q is already consumed by pipelines[%d]; a topic may feed only one pipeline", topic, j)
			default:
				topics[topic] = i
			}
		}
		switch {
		case pc.Tenant == "":
			l.add(p+".tenant", "is required")
		case c.Tenants[pc.Tenant] == nil:
			l.add(p+".tenant", "tenant %q is not defined under tenants", pc.Tenant)
		}
		l.validateDecode(p+".decode", &pc.Decode)
		if strings.TrimSpace(pc.Identifier) == "" {
			l.add(p+".identifier", "is required")
		}
		if pc.OnDelete != OnDeleteSkip && pc.OnDelete != OnDeleteProcess {
			l.add(p+".onDelete", "must be skip or process, got %s", l.show(p+".onDelete", pc.OnDelete))
		}
		switch pc.OnLookupMiss {
		case LookupMissSkip, LookupMissDeadLetter:
		case LookupMissRetry:
			if pc.LookupRetryWindow <= 0 {
				l.add(p+".lookupRetryWindow", "must be greater than 0 with onLookupMiss: retry")
			}
		default:
			l.add(p+".onLookupMiss", "must be skip, retry or deadLetter, got %s", l.show(p+".onLookupMiss", pc.OnLookupMiss))
		}
		switch pc.OnStale {
		case OnStaleSkip, OnStaleDeadLetter:
		default:
			l.add(p+".onStale", "must be skip or deadLetter, got %s", l.show(p+".onStale", pc.OnStale))
		}
		if ra := pc.RequireActive; ra != nil {
			switch {
			case strings.TrimSpace(ra.Table) == "":
				l.add(p+".requireActive.table", "is required (the lookup table of active interactions)")
			case !slices.ContainsFunc(c.Tables, func(tc TableConfig) bool { return tc.Name == ra.Table }):
				l.add(p+".requireActive.table", "%s is not defined under tables", l.show(p+".requireActive.table", ra.Table))
			}
		}
		l.validateVariables(p, pc.Variables)
	}
}

// fieldNameRE is what a table's projected field may be called: a name expressions read as
// row.field.
var fieldNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (l *loader) validateTables(c *Config) {
	names := map[string]int{}
	decodes := map[string]int{} // topic -> first table reading it
	for i := range c.Tables {
		tc, p := &c.Tables[i], fmt.Sprintf("tables[%d]", i)
		l.uniqueName(p, "tables", tc.Name, i, names)
		switch {
		case tc.Topic == "":
			l.add(p+".topic", "is required")
		case !topicRE.MatchString(tc.Topic):
			l.add(p+".topic", "%s is not a valid Kafka topic name", l.show(p+".topic", tc.Topic))
		}
		l.validateDecode(p+".decode", &tc.Decode)
		if j, ok := decodes[tc.Topic]; ok && tc.Topic != "" && c.Tables[j].Decode != tc.Decode {
			l.add(p+".decode", "tables[%d] reads topic %q too, with another decode; tables of one topic decode it alike", j, tc.Topic)
		} else if !ok {
			decodes[tc.Topic] = i
		}
		if strings.TrimSpace(tc.Key) == "" {
			l.add(p+".key", "is required")
		}
		if len(tc.Value) == 0 {
			l.add(p+".value", "at least one field is required (name: expression)")
		}
		for _, f := range slices.Sorted(maps.Keys(tc.Value)) {
			fp := p + ".value." + f
			switch {
			case !fieldNameRE.MatchString(f):
				l.add(fp, "a field name must be a letter or '_' then letters, digits and '_'")
			case strings.TrimSpace(tc.Value[f]) == "":
				l.add(fp, "an expression is required")
			}
		}
		if tc.MaxEntries < 1 {
			l.add(p+".maxEntries", "must be at least 1, got %d", tc.MaxEntries)
		}
		if tc.MaxBytes < KiB {
			l.add(p+".maxBytes", "must be at least 1KiB, got %s", strconv.FormatInt(int64(tc.MaxBytes), 10))
		}
	}
}

func (l *loader) validateDecode(p string, d *DecodeConfig) {
	if d.MaxRecordBytes <= 0 {
		l.add(p+".maxRecordBytes", "must be greater than 0, got %s", strconv.FormatInt(int64(d.MaxRecordBytes), 10))
	}
	switch d.KeyFormat {
	case "":
		d.KeyFormat = KeyFormatString
		if d.Format == FormatAvroRegistry {
			d.KeyFormat = FormatAvroRegistry
		}
	case KeyFormatString, FormatAvroRegistry:
	default:
		l.add(p+".keyFormat", "must be string or avro-registry, got %s", l.show(p+".keyFormat", d.KeyFormat))
	}
	switch d.Format {
	case FormatAvro:
		if d.SchemaFile == "" {
			l.add(p+".schemaFile", "is required when format is avro")
			return
		}
		d.SchemaFile = l.resolve(d.SchemaFile)
		b, err := l.readFile(d.SchemaFile)
		switch {
		case err != nil:
			l.add(p+".schemaFile", "reading file: %v", err)
		case !json.Valid(b):
			l.add(p+".schemaFile", "%s is not a JSON Avro schema", d.SchemaFile)
		}
	case FormatAvroRegistry, FormatJSON:
		if d.SchemaFile != "" {
			l.add(p+".schemaFile", "is only used when format is avro")
		}
	default:
		l.add(p+".format", "must be avro-registry, avro or json, got %s", l.show(p+".format", d.Format))
	}
}

func (l *loader) validateVariables(p string, vars []VariableConfig) {
	if len(vars) == 0 {
		l.add(p+".variables", "at least one variable is required")
	}
	names := map[string]int{}
	for j := range vars {
		v, vp := &vars[j], fmt.Sprintf("%s.variables[%d]", p, j)
		switch rule := api.ValidateName(v.Name); {
		case v.Name == "":
			l.add(vp+".name", "is required")
		case rule != "":
			l.add(vp+".name", "%s, got %s", rule, l.show(vp+".name", v.Name))
		}
		if k, dup := names[v.Name]; dup && v.Name != "" {
			l.add(vp+".name", "variable %q is already defined at %s.variables[%d]", v.Name, p, k)
		} else {
			names[v.Name] = j
		}
		if strings.TrimSpace(v.Value) == "" {
			l.add(vp+".value", "is required")
		}
		if dt := v.DataType; dt.Expr == "" && dt.Value != "" && !api.ValidDataType(dt.Value) {
			l.add(vp+".dataType", "must be one of text, number, phone, date, time, currency, got %s", l.show(vp+".dataType", dt.Value))
		}
		if dn := v.DisplayName; dn.Expr == "" && utf8.RuneCountInString(dn.Value) > api.MaxDisplayNameLen {
			l.add(vp+".displayName", "must be at most %d characters, got %d", api.MaxDisplayNameLen, utf8.RuneCountInString(dn.Value))
		}
	}
}

func (l *loader) validateDeadLetter(c *Config) {
	if c.DeadLetter.IncludePrivateValues && !c.DeadLetter.IncludeValue {
		l.add("deadLetter.includePrivateValues", "requires deadLetter.includeValue: true (private values cannot be kept when no value is)")
	}
	const p = "deadLetter.topic"
	t := c.DeadLetter.Topic
	if t == "" {
		return
	}
	if !topicRE.MatchString(t) {
		l.add(p, "%s is not a valid Kafka topic name", l.show(p, t))
		return
	}
	for i, pc := range c.Pipelines {
		if slices.Contains(pc.Topics, t) {
			l.add(p, "topic %q is consumed by pipelines[%d]; the dead-letter topic must not be an input", t, i)
			return
		}
	}
}

func (l *loader) validateConnector(c *ConnectorConfig) {
	const p = "connector."
	if c.ShutdownTimeout <= 0 {
		l.add(p+"shutdownTimeout", "must be greater than 0")
	}
	if c.CommitInterval < 100*time.Millisecond {
		l.add(p+"commitInterval", "must be at least 100ms, got %v", c.CommitInterval)
	}
	if c.MaxPendingRecords < 1 {
		l.add(p+"maxPendingRecords", "must be at least 1, got %d", c.MaxPendingRecords)
	}
	if c.MaxPendingBytes < KiB {
		l.add(p+"maxPendingBytes", "must be at least 1KiB, got %s", strconv.FormatInt(int64(c.MaxPendingBytes), 10))
	}
	if c.Linger > time.Minute {
		l.add(p+"linger", "must be at most 1m, got %v", c.Linger)
	}
	if c.MaxVariablesPerRequest < 1 || c.MaxVariablesPerRequest > api.MaxVariablesPerRequest {
		l.add(p+"maxVariablesPerRequest", "must be between 1 and %d, got %d", api.MaxVariablesPerRequest, c.MaxVariablesPerRequest)
	}
}

func (l *loader) validateBudget(c *Config) {
	const p = "budget."
	b := &c.Budget
	switch b.Coordination {
	case CoordinationKafka, CoordinationLocal:
	default:
		l.add(p+"coordination", "must be kafka or local, got %s", l.show(p+"coordination", b.Coordination))
	}
	lp := p + "ledger."
	lc := &b.Ledger
	if !topicRE.MatchString(lc.Topic) {
		l.add(lp+"topic", "%s is not a valid Kafka topic name", l.show(lp+"topic", lc.Topic))
	} else {
		for i, pc := range c.Pipelines {
			if slices.Contains(pc.Topics, lc.Topic) {
				l.add(lp+"topic", "topic %q is consumed by pipelines[%d]; the ledger topic must be a topic of its own", lc.Topic, i)
				break
			}
		}
		if lc.Topic == c.DeadLetter.Topic {
			l.add(lp+"topic", "topic %q is the dead-letter topic; the ledger topic must be a topic of its own", lc.Topic)
		}
	}
	if len(lc.MemberID) > 200 || strings.ContainsFunc(lc.MemberID, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
		l.add(lp+"memberId", "must be at most 200 printable ASCII characters without spaces, got %s", l.show(lp+"memberId", lc.MemberID))
	}
	l.durationIn(lp+"claimValidity", lc.ClaimValidity, 100*time.Millisecond, time.Minute)
	l.durationIn(lp+"unavailableAfter", lc.UnavailableAfter, time.Second, time.Hour)
	if lc.MaxRequestTimeout <= 0 || lc.MaxRequestTimeout > 10*time.Minute {
		l.add(lp+"maxRequestTimeout", "must be between 1ns and 10m, got %v", lc.MaxRequestTimeout)
		return
	}
	if b.Coordination != CoordinationKafka {
		return
	}
	for _, name := range slices.Sorted(maps.Keys(c.Tenants)) {
		if t := c.Tenants[name]; t.RequestTimeout > lc.MaxRequestTimeout {
			l.add(lp+"maxRequestTimeout", "must be at least every tenant's requestTimeout: tenants.%s.requestTimeout is %v, above %v", name, t.RequestTimeout, lc.MaxRequestTimeout)
		}
	}
}

// headerNameRE is an HTTP header name (RFC 9110's token).
var headerNameRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

func (l *loader) validateTracing(tc *TracingConfig) {
	const p = "tracing"
	https := false
	if tc.Endpoint != "" {
		u, err := url.Parse(tc.Endpoint)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			l.add(p+".endpoint", "must be an http:// or https:// URL like http://otel-collector:4318, got %s", l.show(p+".endpoint", tc.Endpoint))
		case u.User != nil:
			l.add(p+".endpoint", "must not contain credentials; use tracing.headers")
		case u.RawQuery != "" || u.Fragment != "":
			l.add(p+".endpoint", "must not have a query or fragment")
		case u.Scheme == "http" && !tc.Insecure:
			l.add(p+".endpoint", "is http://: spans and headers would travel in clear; use https:// or set tracing.insecure: true")
		case u.Scheme == "https":
			https = true
			if tc.Insecure {
				l.add(p+".insecure", "is true but tracing.endpoint is https://; insecure allows an http:// endpoint only")
			}
		}
	}
	if tc.TLS.isSet() {
		if tc.Endpoint != "" && !https {
			l.add(p+".tls", "applies to an https:// endpoint only")
		} else {
			l.checkTLS(p+".tls", &tc.TLS)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(tc.Headers)) {
		if !headerNameRE.MatchString(name) {
			l.add(joinPath(p+".headers", name), "is not a valid HTTP header name")
		}
	}
	if !(tc.SampleRatio >= 0 && tc.SampleRatio <= 1) {
		l.add(p+".sampleRatio", "must be between 0 and 1, got %v", tc.SampleRatio)
	}
	if strings.TrimSpace(tc.ServiceName) == "" {
		l.add(p+".serviceName", "must not be empty")
	}
}
