package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/augment-connector/augment-connector/connector"
	"github.com/augment-connector/augment-connector/internal/api"
	"github.com/augment-connector/augment-connector/schemas"
	"github.com/augment-connector/augment-connector/transform"
)

// SampleRecord is one line of a sample file (NDJSON) for `check --sample`.
type SampleRecord struct {
	Topic string `json:"topic"`
	// Key is the record's key: a JSON string for a string key, or any other JSON value for a
	// key the registry would decode (keyFormat avro-registry), such as {"id": 42}.
	Key json.RawMessage `json:"key,omitempty"`
	// KeyBase64 is the key as bytes instead: Avro binary (Confluent-framed or not) decoded
	// with KeySchema (a .avsc file path, relative to the sample file), or a string key when
	// KeySchema is empty.
	KeyBase64 string `json:"keyBase64,omitempty"`
	KeySchema string `json:"keySchema,omitempty"`
	// Value is the record's value as JSON (an object, or null for a tombstone): what the
	// decoder would have produced, whatever the pipeline's format.
	Value json.RawMessage `json:"value,omitempty"`
	// ValueBase64 is the record's value as bytes instead: Avro binary (Confluent-framed or
	// not) decoded with Schema (a .avsc file path, relative to the sample file), or JSON bytes
	// when Schema is empty.
	ValueBase64 string            `json:"valueBase64,omitempty"`
	Schema      string            `json:"schema,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"`
	Timestamp   time.Time         `json:"timestamp,omitzero"`
}

// maskedValue replaces privacy:true values in what check prints.
const maskedValue = "******"

// CheckSamples runs each record of the NDJSON sample file through its pipeline, offline, and
// prints the request(s) it would produce or the dead-letter reason, privacy values masked. It
// returns how many records would be dead-lettered or could not be read.
func (c *Compiled) CheckSamples(ctx context.Context, path string, w io.Writer) (problems int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("reading samples: %w", err)
	}
	defer f.Close()
	byTopic := make(map[string]int)
	for i := range c.Config.Pipelines {
		for _, t := range c.Config.Pipelines[i].Topics {
			byTopic[t] = i
		}
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 || b[0] == '#' {
			continue
		}
		fmt.Fprintf(w, "%s:%d: ", path, line)
		if msg := c.sample(ctx, path, b, byTopic, w); msg != "" {
			problems++
			fmt.Fprintf(w, "dead letter: %s\n", msg)
		}
	}
	if err := sc.Err(); err != nil {
		return problems, fmt.Errorf("reading samples: %w", err)
	}
	return problems, nil
}

// sample handles one line; it returns the dead-letter reason, or "" after printing what the
// record would do.
func (c *Compiled) sample(ctx context.Context, path string, line []byte, byTopic map[string]int, w io.Writer) string {
	var s SampleRecord
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return "class=sample: " + err.Error()
	}
	o := c.evaluate(ctx, path, &s, byTopic, false)
	if o.Pipeline == "" {
		return o.DeadLetter
	}
	if o.DeadLetter != "" {
		return fmt.Sprintf("pipeline=%s class=%s: %s", o.Pipeline, o.Class, o.DeadLetter)
	}
	if o.Key != "" {
		fmt.Fprintf(w, "key=%s ", o.Key)
	}
	if o.LookupMiss != "" {
		// Samples run without table data: every lookup misses.
		fmt.Fprintf(w, "pipeline=%s lookup(%q) found no row (samples run with empty tables); onLookupMiss: %s\n", o.Pipeline, o.LookupMiss, o.OnLookupMiss)
	}
	if o.Outcome != transform.Write {
		fmt.Fprintf(w, "pipeline=%s %s (%s)\n", o.Pipeline, o.Outcome, o.Reason)
		return ""
	}
	fmt.Fprintf(w, "pipeline=%s tenant=%s\n", o.Pipeline, o.Tenant)
	for _, r := range o.Requests {
		shown := make([]api.Variable, len(r.Variables))
		copy(shown, r.Variables)
		for j := range shown {
			if shown[j].Privacy {
				shown[j].Value = maskedValue
			}
		}
		fmt.Fprintf(w, "  POST %s%s\n  %s\n", api.PathPrefix, url.PathEscape(r.Identifier), api.AppendRequest(nil, shown, o.dataForm))
	}
	return ""
}

// outcome is what one record would do, offline: the requests it makes, or why it makes none.
type outcome struct {
	Pipeline, Tenant string
	Key              string // the decoded key as JSON, when it is not a string
	Outcome          transform.Outcome
	Reason           string // why it was filtered or skipped
	LookupMiss       string // the table a lookup found no row in
	OnLookupMiss     string
	Class            string // the dead-letter class, when DeadLetter is set
	DeadLetter       string // the dead-letter reason ("" when none); with Pipeline "", a sample error
	Requests         []outcomeRequest
	dataForm         bool
}

type outcomeRequest struct {
	Identifier string
	Variables  []api.Variable
}

// evaluate runs one record through its pipeline as the connector would, minus the network:
// decode, transform, the lookup-miss policy, and the split into requests of at most 50
// variables. Lookups read c.Tables as they stand. With final, they hold every row the record
// can ever find (a pipeline test's), so a miss ends as the connector's policy ends it: skipped,
// or dead-lettered (retry too, once its window passed); without (check --sample, whose tables
// are empty), the miss is reported beside what the expressions made of it.
func (c *Compiled) evaluate(ctx context.Context, path string, s *SampleRecord, byTopic map[string]int, final bool) outcome {
	i, ok := byTopic[s.Topic]
	if !ok {
		return outcome{DeadLetter: fmt.Sprintf("class=sample: no pipeline reads topic %q", s.Topic)}
	}
	pc := &c.Config.Pipelines[i]
	o := outcome{Pipeline: pc.Name, Tenant: pc.Tenant, OnLookupMiss: pc.OnLookupMiss}
	o.dataForm = c.Config.Tenants[pc.Tenant] != nil && c.Config.Tenants[pc.Tenant].BodyForm == "data"
	value, err := sampleValue(ctx, path, s)
	if err != nil {
		o.Class, o.DeadLetter = "decode", err.Error()
		return o
	}
	key, err := sampleKey(ctx, path, s)
	if err != nil {
		o.Class, o.DeadLetter = "decode", "decoding the key: "+err.Error()
		return o
	}
	if _, isString := key.(string); !isString {
		kb, err := json.Marshal(key)
		if err != nil {
			o.Class, o.DeadLetter = "decode", "decoding the key: "+err.Error()
			return o
		}
		o.Key = string(kb)
	}
	rec := &transform.Record{Topic: s.Topic, Key: key, Headers: s.Headers, Value: value, Timestamp: s.Timestamp}
	res, err := c.Pipelines[i].Apply(rec)
	if err != nil {
		o.Class, o.DeadLetter = "transform", err.Error()
		return o
	}
	o.Outcome, o.Reason = res.Outcome, res.Reason
	o.LookupMiss = res.LookupMiss
	if res.LookupMiss != "" && final {
		switch pc.OnLookupMiss {
		case transform.LookupMissRetry, transform.LookupMissDeadLetter:
			// Offline the rows are final: a retry would end as the window's dead letter.
			o.Class, o.DeadLetter = connector.ClassLookupMiss, fmt.Sprintf("lookup(%q) found no row", res.LookupMiss)
			return o
		default:
			o.Outcome, o.Reason = transform.Skipped, connector.ReasonLookupMiss
			return o
		}
	}
	if res.Outcome != transform.Write {
		return o
	}
	if len(res.Identifiers) == 0 || len(res.Variables) == 0 {
		o.Outcome, o.Reason = transform.Skipped, transform.ReasonNoVariables
		return o
	}
	for _, id := range res.Identifiers {
		for start := 0; start < len(res.Variables); start += api.MaxVariablesPerRequest {
			end := min(start+api.MaxVariablesPerRequest, len(res.Variables))
			o.Requests = append(o.Requests, outcomeRequest{Identifier: id, Variables: slices.Clone(res.Variables[start:end])})
		}
	}
	return o
}

// sampleKey returns the sample's key as the connector would give it to expressions: a string,
// or the decoded value of a JSON or Avro key.
func sampleKey(ctx context.Context, path string, s *SampleRecord) (any, error) {
	if s.KeyBase64 != "" {
		b, err := base64.StdEncoding.DecodeString(s.KeyBase64)
		if err != nil {
			return nil, fmt.Errorf("keyBase64: %w", err)
		}
		if s.KeySchema == "" {
			return string(b), nil
		}
		return sampleAvro(ctx, path, s.KeySchema, b)
	}
	if len(s.Key) == 0 || string(s.Key) == "null" {
		return "", nil
	}
	if s.Key[0] == '"' {
		var k string
		if err := json.Unmarshal(s.Key, &k); err != nil {
			return nil, err
		}
		return k, nil
	}
	return schemas.NewJSONDecoder().Decode(ctx, s.Key)
}

func sampleValue(ctx context.Context, path string, s *SampleRecord) (any, error) {
	if s.ValueBase64 == "" {
		if len(s.Value) == 0 || string(s.Value) == "null" {
			return nil, nil
		}
		return schemas.NewJSONDecoder().Decode(ctx, s.Value)
	}
	b, err := base64.StdEncoding.DecodeString(s.ValueBase64)
	if err != nil {
		return nil, fmt.Errorf("valueBase64: %w", err)
	}
	if s.Schema == "" {
		return schemas.NewJSONDecoder().Decode(ctx, b)
	}
	return sampleAvro(ctx, path, s.Schema, b)
}

// sampleAvro decodes b, Avro binary (Confluent-framed or not), with the schema file schema.
func sampleAvro(ctx context.Context, path, schema string, b []byte) (any, error) {
	sp := schema
	if !filepath.IsAbs(sp) {
		sp = filepath.Join(filepath.Dir(path), sp)
	}
	d, err := avroDecoder(sp)
	if err != nil {
		return nil, err
	}
	if _, err := schemas.SchemaID(b); err == nil && len(b) >= 5 {
		b = b[5:] // Confluent-framed: the local schema stands in for the registry's
	}
	v, err := d.Decode(ctx, b)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, errors.New("empty value")
	}
	return v, nil
}
