package tables

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/augment-connector/augment-connector/transform"
)

func TestCollector(t *testing.T) {
	set, err := New([]Spec{customersSpec(t, "customers-topic", 2)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ev transform.Evaluator
	put := func(id int) error {
		ev.Set(&transform.Record{Value: map[string]any{"op": "c", "after": map[string]any{"id": int64(id), "tier": "gold", "balance": 1.5}}})
		action, err := set.apply(&ev, 0, time.Now())
		set.metrics.record("customers", action)
		return err
	}
	for id := 1; id <= 2; id++ {
		if err := put(id); err != nil {
			t.Fatal(err)
		}
	}
	if err := put(3); err == nil {
		t.Fatal("a third entry passed maxEntries 2")
	}
	set.Lookup("customers", "1")
	set.Lookup("customers", "9")

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(set.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			if v != 0 {
				got[key] = v
			}
		}
	}
	want := map[string]float64{
		"augment_connector_table_entries,table=customers":                    2,
		"augment_connector_table_bytes,table=customers":                      got["augment_connector_table_bytes,table=customers"],
		"augment_connector_table_max_entries,table=customers":                2,
		"augment_connector_table_full,table=customers":                       1,
		"augment_connector_table_records_total,action=put,table=customers":   2,
		"augment_connector_table_records_total,action=error,table=customers": 1,
		"augment_connector_table_lookups_total":                              2,
		"augment_connector_table_lookup_misses_total":                        1,
	}
	if b := got["augment_connector_table_bytes,table=customers"]; b < 2*entryOverhead {
		t.Errorf("table_bytes %v, want at least two entries' overhead", b)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("non-zero metrics (-want +got):\n%s", diff)
	}
}
