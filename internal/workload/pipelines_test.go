package workload

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
	"go.yaml.in/yaml/v3"

	"github.com/augment-connector/augment-connector/schemas"
	"github.com/augment-connector/augment-connector/transform"
)

// demoFile is the shape of demo-pipelines.yaml, read here only to check it against the model.
type demoFile struct {
	Pipelines []struct {
		Name       string   `yaml:"name"`
		Topics     []string `yaml:"topics"`
		Tenant     string   `yaml:"tenant"`
		Filter     string   `yaml:"filter"`
		Identifier string   `yaml:"identifier"`
		OnDelete   string   `yaml:"onDelete"`
		Variables  []struct {
			Name        string `yaml:"name"`
			Value       string `yaml:"value"`
			IVR         bool   `yaml:"ivr"`
			Display     bool   `yaml:"display"`
			Privacy     bool   `yaml:"privacy"`
			DisplayName string `yaml:"displayName"`
			DataType    string `yaml:"dataType"`
		} `yaml:"variables"`
	} `yaml:"pipelines"`
}

// loadDemo compiles demo-pipelines.yaml and returns its pipelines by topic.
func loadDemo(t *testing.T) map[string]*transform.Pipeline {
	t.Helper()
	b, err := os.ReadFile("demo-pipelines.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var f demoFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatal(err)
	}
	byTopic := map[string]*transform.Pipeline{}
	for _, p := range f.Pipelines {
		spec := transform.Spec{Name: p.Name, Filter: p.Filter, Identifier: p.Identifier, OnDelete: p.OnDelete}
		for _, v := range p.Variables {
			vs := transform.VariableSpec{
				Name: v.Name, Value: v.Value,
				IVR: transform.Attr{Literal: v.IVR}, Display: transform.Attr{Literal: v.Display}, Privacy: transform.Attr{Literal: v.Privacy},
			}
			if v.DisplayName != "" {
				vs.DisplayName = transform.Attr{Literal: v.DisplayName}
			}
			if v.DataType != "" {
				vs.DataType = transform.Attr{Literal: v.DataType}
			}
			spec.Variables = append(spec.Variables, vs)
		}
		pl, err := transform.Compile(spec)
		if err != nil {
			t.Fatal(err)
		}
		for _, topic := range p.Topics {
			byTopic[topic] = pl
		}
	}
	return byTopic
}

// TestDemoPipelines runs the generated events, in every framing, through the real decoders and
// the real transform with demo-pipelines.yaml, and checks each outcome against the model's
// Identifier and Vars: the YAML, the encodings and the model agree.
func TestDemoPipelines(t *testing.T) {
	pipelines := loadDemo(t)
	reg := srfake.New()
	defer reg.Close()
	cl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ids, err := Register(ctx, cl, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	avro := func(s string) schemas.Decoder {
		d, err := schemas.NewAvroDecoder(s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	registry := schemas.NewRegistryDecoder(cl)
	json := schemas.NewJSONDecoder()

	cases := []struct {
		framing Framing
		flat    bool
		keys    map[string]schemas.Decoder
		values  map[string]schemas.Decoder
	}{
		{FramingConfluent, false, nil, nil},
		{FramingConfluent, true, nil, nil},
		{FramingAvro, false,
			map[string]schemas.Decoder{CustomersTopic: avro(schemas.CustomerKey), OrdersTopic: avro(schemas.OrderKey)},
			map[string]schemas.Decoder{CustomersTopic: avro(schemas.CustomerValue), OrdersTopic: avro(schemas.OrderValue)}},
		{FramingAvro, true,
			map[string]schemas.Decoder{FlatTopic: avro(schemas.CustomerKey)},
			map[string]schemas.Decoder{FlatTopic: avro(schemas.CustomerFlat)}},
		{FramingJSON, false, nil, nil},
	}
	for _, c := range cases {
		name := c.framing.String()
		if c.flat {
			name += "/flat"
		}
		t.Run(name, func(t *testing.T) {
			o := DefaultOptions()
			o.Framing, o.Flat, o.IDs, o.Tombstones = c.framing, c.flat, ids, true
			g, err := NewGenerator(5, o)
			if err != nil {
				t.Fatal(err)
			}
			decoder := func(m map[string]schemas.Decoder, topic string) schemas.Decoder {
				switch c.framing {
				case FramingConfluent:
					return registry
				case FramingJSON:
					return json
				}
				return m[topic]
			}
			writes := 0
			for i, ev := range g.Generate(3000) {
				key, err := decoder(c.keys, ev.Topic).Decode(ctx, ev.Key)
				if err != nil {
					t.Fatalf("event %d: decoding key: %v", i, err)
				}
				value, err := decoder(c.values, ev.Topic).Decode(ctx, ev.Value)
				if err != nil {
					t.Fatalf("event %d: decoding value: %v", i, err)
				}
				res, err := pipelines[ev.Topic].Apply(&transform.Record{Topic: ev.Topic, Key: key, Value: value})
				if err != nil {
					t.Fatalf("event %d (%s %s): %v", i, ev.Topic, ev.Op, err)
				}
				if ev.Identifier == "" {
					if res.Outcome == transform.Write {
						t.Fatalf("event %d (%s %s): pipeline wrote %v to %v, model expects nothing", i, ev.Topic, ev.Op, res.Variables, res.Identifiers)
					}
					continue
				}
				writes++
				got := map[string]string{}
				for _, v := range res.Variables {
					got[v.Name] = v.Value
				}
				if diff := cmp.Diff([]string{ev.Identifier}, res.Identifiers); diff != "" {
					t.Fatalf("event %d: identifiers (-model +pipeline):\n%s", i, diff)
				}
				if diff := cmp.Diff(ev.Vars, got); diff != "" {
					t.Fatalf("event %d (%s %s): variables (-model +pipeline):\n%s", i, ev.Topic, ev.Op, diff)
				}
			}
			if writes < 500 {
				t.Errorf("only %d of 3000 events write variables", writes)
			}
		})
	}
}
