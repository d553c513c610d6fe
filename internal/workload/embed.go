package workload

import _ "embed"

// DemoPipelines is demo-pipelines.yaml: the pipelines whose output Event.Vars models, as a
// YAML document with a top-level pipelines key, for the demo's embedded config and the tests.
//
//go:embed demo-pipelines.yaml
var DemoPipelines string
