package app

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/augment-connector/augment-connector/internal/config"
	"github.com/augment-connector/augment-connector/transform"
)

// specBase is a valid config with one variable of every attribute form: literals, expressions
// and attributes left out.
const specBase = `kafka:
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
        ivr: true
        display: {expr: after.vip}
        privacy: {expr: "after.secret != nil"}
      - name: _b
        value: after.b
        displayName: {expr: '"B " + after.kind'}
        dataType: {expr: after.type}
`

// TestSpec: a pipeline as configured becomes the Spec transform compiles, attribute by
// attribute. (It was config's TestSpec before the conversion moved here.)
func TestSpec(t *testing.T) {
	cfg, err := config.Parse([]byte(specBase), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := transform.Spec{
		Name:         "customers",
		Identifier:   "after.interaction_id",
		OnDelete:     "skip",
		OnLookupMiss: "skip",
		Variables: []transform.VariableSpec{{
			Name:        "_customerTier",
			Value:       "after.tier",
			IVR:         transform.Attr{Literal: true},
			Display:     transform.Attr{Expr: "after.vip"},
			Privacy:     transform.Attr{Expr: "after.secret != nil"},
			DisplayName: transform.Attr{Literal: "Customer Tier"},
			DataType:    transform.Attr{Literal: "text"},
		}, {
			Name:        "_b",
			Value:       "after.b",
			IVR:         transform.Attr{Literal: false},
			Display:     transform.Attr{Literal: false},
			Privacy:     transform.Attr{Literal: false},
			DisplayName: transform.Attr{Expr: `"B " + after.kind`},
			DataType:    transform.Attr{Expr: "after.type"},
		}},
	}
	if diff := cmp.Diff(want, spec(&cfg.Pipelines[0])); diff != "" {
		t.Errorf("spec (-want +got):\n%s", diff)
	}
}

// TestSpecRecordTimeAndRequireActive: recordTime and requireActive are passed on as written;
// left out, the Spec has neither.
func TestSpecRecordTimeAndRequireActive(t *testing.T) {
	for _, tc := range []struct {
		name string
		pc   config.PipelineConfig
		want transform.Spec
	}{
		{"neither", config.PipelineConfig{Name: "p"}, transform.Spec{Name: "p"}},
		{"both", config.PipelineConfig{Name: "p", RecordTime: "source.ts_ms",
			RequireActive: &config.RequireActiveConfig{Table: "active", Expression: `identifier in after.calls`}},
			transform.Spec{Name: "p", RecordTime: "source.ts_ms",
				RequireActive: &transform.ActiveSpec{Table: "active", Expression: `identifier in after.calls`}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.want.Variables = []transform.VariableSpec{}
			if diff := cmp.Diff(tc.want, spec(&tc.pc)); diff != "" {
				t.Errorf("spec (-want +got):\n%s", diff)
			}
		})
	}
}

// TestConfigAndTransformAgree: config places a wrong onDelete, onLookupMiss, variable name,
// displayName or dataType at its line, and transform decides what a pipeline means; both check these rules
// (config's messages are pinned by its tests), so they must accept exactly the same values.
func TestConfigAndTransformAgree(t *testing.T) {
	tests := []struct {
		field string // the pipeline's field, as transform names it
		from  string // replaced in specBase
		to    string
		set   func(*config.PipelineConfig) // the same change, on the pipeline as loaded
	}{
		{field: "onDelete", from: "    tenant: main", to: "    tenant: main\n    onDelete: process",
			set: func(p *config.PipelineConfig) { p.OnDelete = "process" }},
		{field: "onDelete", from: "    tenant: main", to: "    tenant: main\n    onDelete: drop",
			set: func(p *config.PipelineConfig) { p.OnDelete = "drop" }},
		{field: "onDelete", from: "    tenant: main", to: "    tenant: main\n    onDelete: Skip",
			set: func(p *config.PipelineConfig) { p.OnDelete = "Skip" }},
		{field: "onLookupMiss", from: "    tenant: main", to: "    tenant: main\n    onLookupMiss: deadLetter",
			set: func(p *config.PipelineConfig) { p.OnLookupMiss = "deadLetter" }},
		{field: "onLookupMiss", from: "    tenant: main", to: "    tenant: main\n    onLookupMiss: retry",
			set: func(p *config.PipelineConfig) { p.OnLookupMiss = "retry" }},
		{field: "onLookupMiss", from: "    tenant: main", to: "    tenant: main\n    onLookupMiss: ignore",
			set: func(p *config.PipelineConfig) { p.OnLookupMiss = "ignore" }},
		{field: "onLookupMiss", from: "    tenant: main", to: "    tenant: main\n    onLookupMiss: DeadLetter",
			set: func(p *config.PipelineConfig) { p.OnLookupMiss = "DeadLetter" }},
		{field: "variables[0].name", from: "name: _customerTier", to: "name: customerTier",
			set: func(p *config.PipelineConfig) { p.Variables[0].Name = "customerTier" }},
		{field: "variables[0].name", from: "name: _customerTier", to: "name: _abcdefghijklmnopqrstuvwx",
			set: func(p *config.PipelineConfig) { p.Variables[0].Name = "_abcdefghijklmnopqrstuvwx" }},
		{field: "variables[0].name", from: "name: _customerTier", to: "name: _abcdefghijklmnopqrstuvwxy",
			set: func(p *config.PipelineConfig) { p.Variables[0].Name = "_abcdefghijklmnopqrstuvwxy" }},
		{field: "variables[1].name", from: "name: _b", to: "name: _customerTier",
			set: func(p *config.PipelineConfig) { p.Variables[1].Name = "_customerTier" }},
		{field: "variables[0].displayName", from: "displayName: Customer Tier", to: "displayName: abcdefghijklmnopqrstuvwxyz1234",
			set: func(p *config.PipelineConfig) { p.Variables[0].DisplayName.Value = "abcdefghijklmnopqrstuvwxyz1234" }},
		{field: "variables[0].displayName", from: "displayName: Customer Tier", to: "displayName: abcdefghijklmnopqrstuvwxyz12345",
			set: func(p *config.PipelineConfig) { p.Variables[0].DisplayName.Value = "abcdefghijklmnopqrstuvwxyz12345" }},
		{field: "variables[0].dataType", from: "dataType: text", to: `dataType: ""`,
			set: func(p *config.PipelineConfig) { p.Variables[0].DataType.Value = "" }},
		{field: "variables[0].dataType", from: "dataType: text", to: "dataType: currency",
			set: func(p *config.PipelineConfig) { p.Variables[0].DataType.Value = "currency" }},
		{field: "variables[0].dataType", from: "dataType: text", to: "dataType: string",
			set: func(p *config.PipelineConfig) { p.Variables[0].DataType.Value = "string" }},
		{field: "variables[0].dataType", from: "dataType: text", to: "dataType: Text",
			set: func(p *config.PipelineConfig) { p.Variables[0].DataType.Value = "Text" }},
	}
	loaded, err := config.Parse([]byte(specBase), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.to, func(t *testing.T) {
			if !strings.Contains(specBase, tt.from) {
				t.Fatalf("specBase has no %q", tt.from)
			}
			_, cerr := config.Parse([]byte(strings.Replace(specBase, tt.from, tt.to, 1)), "test.yaml")
			var errs config.Errors
			errors.As(cerr, &errs)
			configOK := !errs.Has("pipelines[0]." + tt.field)

			pc := loaded.Pipelines[0]
			pc.Variables = slices.Clone(pc.Variables)
			tt.set(&pc)
			_, terr := transform.Compile(spec(&pc))
			var ce *transform.CompileErrors
			errors.As(terr, &ce)
			transformOK := ce == nil || !slices.ContainsFunc(ce.Errs, func(fe transform.FieldError) bool { return fe.Field == tt.field })
			if configOK != transformOK {
				t.Errorf("%s: config accepts it: %v, transform: %v (config: %v; transform: %v)", tt.field, configOK, transformOK, cerr, terr)
			}
		})
	}
}

// TestRequireActiveTableAgrees: config places a requireActive.table that is missing or names
// no table at its line, and transform refuses the same, so both accept exactly the same tables.
func TestRequireActiveTableAgrees(t *testing.T) {
	const tables = "tables:\n  - {name: active, topic: calls, decode: {format: json}, key: after.call, value: {a: after.a}}\n" +
		"  - {name: byCustomer, topic: calls, decode: {format: json}, key: after.customer, id: after.call, value: {a: after.a}}\n"
	for _, table := range []string{"active", "byCustomer", "", "activ"} {
		t.Run(table, func(t *testing.T) {
			text := strings.Replace(specBase, "    tenant: main", "    tenant: main\n    requireActive: {table: \""+table+"\"}", 1) + tables
			cfg, cerr := config.Parse([]byte(text), "test.yaml")
			var errs config.Errors
			errors.As(cerr, &errs)
			configOK := !errs.Has("pipelines[0].requireActive.table")

			draft := config.ReadDraft("test.yaml", []byte(text))
			if draft == nil || len(draft.Pipelines) != 1 {
				t.Fatal("no draft")
			}
			_, terr := transform.Compile(spec(&draft.Pipelines[0]), transform.WithTables(declaredTables(draft.Tables)))
			var ce *transform.CompileErrors
			errors.As(terr, &ce)
			transformOK := ce == nil || !slices.ContainsFunc(ce.Errs, func(fe transform.FieldError) bool { return strings.HasPrefix(fe.Field, "requireActive") })
			if configOK != transformOK {
				t.Errorf("config accepts it: %v, transform: %v (config: %v; transform: %v)", configOK, transformOK, cerr, terr)
			}
			if want := table == "active" || table == "byCustomer"; configOK != want || (want && cfg == nil) {
				t.Errorf("config accepts it: %v, want %v (%v)", configOK, want, cerr)
			}
		})
	}
}
