package config

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
)

// Warning is a setting that loads but weakens security: TLS verification turned off, or a
// credential allowed in the clear by an explicit opt-in; or a deprecated key, still accepted
// so that an upgrade does not break a working file. Insecure settings are never silent:
// `check` prints each and the connector logs each at start-up. A warning never contains a
// secret's value.
type Warning struct {
	File string // the file's name as given to Load or Parse
	Line int    // 1-based; 0 when the setting has no place in the file
	Path string // the key path: "kafka.tls.insecureSkipVerify"
	Msg  string
}

// String formats the warning as file:line: path: message, like Error.
func (w Warning) String() string {
	var b strings.Builder
	b.WriteString(w.File)
	if w.Line > 0 {
		fmt.Fprintf(&b, ":%d", w.Line)
	}
	b.WriteString(": ")
	if w.Path != "" {
		b.WriteString(w.Path)
		b.WriteString(": ")
	}
	b.WriteString(w.Msg)
	return b.String()
}

// hasCredentials reports whether requests to the registry carry a secret.
func (r *RegistryConfig) hasCredentials() bool {
	return r.BasicAuth.Username != "" || r.BearerToken != "" || r.BearerTokenFile != "" || r.OAuth.isSet()
}

// oauthWarnings adds the warnings of a client-credentials configuration at p.
func oauthWarnings(add func(path, format string, args ...any), p string, o *OAuthConfig) {
	if !o.isSet() {
		return
	}
	if strings.HasPrefix(o.TokenURL, "http://") {
		add(p+".allowInsecureHTTP", "%s.tokenURL uses http://: the client secret and the tokens are sent unencrypted", p)
	}
	if o.TLS.InsecureSkipVerify {
		add(p+".tls.insecureSkipVerify", "the token endpoint's certificate is not verified; anyone on the path can impersonate it and read the client secret")
	}
}

// Warnings lists every insecure setting the config allows, and every deprecated key it uses, in
// file order of sections: Kafka, schema registry, tenants (by name), budget. Opted-in plaintext
// is listed too: the opt-in makes it legal, not safe.
func (c *Config) Warnings() []Warning {
	var ws []Warning
	add := func(path, format string, args ...any) {
		ws = append(ws, Warning{File: c.file, Line: c.Line(path), Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	k := &c.Kafka
	if k.TLS.Enabled && k.TLS.InsecureSkipVerify {
		add("kafka.tls.insecureSkipVerify", "the brokers' certificates are not verified; anyone on the path can impersonate them and read the records and credentials")
	}
	if k.SASL.Mechanism == SASLPlain && !k.TLS.Enabled {
		add("kafka.sasl.allowPlaintext", "SASL PLAIN without TLS: the password is sent unencrypted")
	}
	if k.SASL.Mechanism == SASLOAuthBearer {
		if !k.TLS.Enabled {
			add("kafka.sasl.allowPlaintext", "SASL OAUTHBEARER without TLS: the token is sent unencrypted")
		}
		oauthWarnings(add, "kafka.sasl.oauth", &k.SASL.OAuth)
	}
	r := &c.SchemaRegistry
	if r.hasCredentials() {
		for i, s := range r.URLs {
			if u, err := url.Parse(s); err == nil && u.Scheme == "http" {
				add("schemaRegistry.allowInsecureHTTP", "schemaRegistry.urls[%d] uses http://: the registry credentials are sent unencrypted", i)
			}
		}
	}
	oauthWarnings(add, "schemaRegistry.oauth", &r.OAuth)
	if r.TLS.InsecureSkipVerify {
		add("schemaRegistry.tls.insecureSkipVerify", "the registry's certificate is not verified; anyone on the path can impersonate it and read the credentials")
	}
	for _, name := range slices.Sorted(maps.Keys(c.Tenants)) {
		t := c.Tenants[name]
		if t.AllowInsecureHTTP && strings.HasPrefix(t.BaseURL(), "http://") {
			add("tenants."+name+".baseURL", "uses http:// (allowInsecureHTTP: true): the action token and the variables are sent unencrypted")
		}
		if p := "tenants." + name + ".notFoundWindow"; c.lines[p] > 0 {
			add(p, "is deprecated: it is the old name of notFoundGrace (%v here); rename it", t.NotFoundGrace)
		}
	}
	if c.Budget.Coordination == CoordinationKafka && c.Budget.Ledger.AllowUnsafeTopic {
		add("budget.ledger.allowUnsafeTopic", "a budget ledger topic that may lose an acknowledged record is accepted (fewer than 3 replicas, min.insync.replicas below 2 or unclean leader election): a lost grant or report can let the tenants exceed their requestsPerMinute; for one-node test clusters only")
	}
	if tc := &c.Tracing; tc.Enabled {
		if tc.Insecure && len(tc.Headers) > 0 {
			add("tracing.insecure", "spans are exported over plain HTTP: the tracing.headers are sent unencrypted")
		}
		if tc.TLS.InsecureSkipVerify {
			add("tracing.tls.insecureSkipVerify", "the trace collector's certificate is not verified; anyone on the path can impersonate it and read the headers")
		}
	}
	return ws
}
