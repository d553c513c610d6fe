package config

import (
	"cmp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Draft is what can still be read of a config file that does not load: its pipelines and
// tables decoded leniently, as written (${NAME} not expanded), and where each key is. Load
// reports a broken file without a Config, so whoever compiles the pipelines (internal/app) could
// otherwise report a bad expression only after every other problem is fixed; with a Draft it
// reports them all at once, each at the line Load would give it.
type Draft struct {
	// Pipelines are in file order, each decoded alone from its YAML with no defaults set: a
	// value of the wrong type stays empty (Load reported it).
	Pipelines []PipelineConfig
	// Tables are the declared lookup tables, decoded the same way; nil when the file has no
	// tables list, empty when the list is empty.
	Tables []TableConfig

	file string
	root *yaml.Node
}

// ReadDraft reads data, the text of the config file name, as a Draft. It returns nil when data
// is not YAML, or has no pipelines list.
func ReadDraft(name string, data []byte) *Draft {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil || doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	pipes := child(root, "pipelines")
	if pipes == nil || pipes.Kind != yaml.SequenceNode {
		return nil
	}
	d := &Draft{file: name, root: root}
	if tn := child(root, "tables"); tn != nil && tn.Kind == yaml.SequenceNode {
		d.Tables = make([]TableConfig, 0, len(tn.Content))
		for _, n := range tn.Content {
			var tc TableConfig
			_ = n.Decode(&tc)
			d.Tables = append(d.Tables, tc)
		}
	}
	for _, n := range pipes.Content {
		var pc PipelineConfig
		_ = n.Decode(&pc)
		d.Pipelines = append(d.Pipelines, pc)
	}
	return d
}

// ErrorAt builds an error at path ("pipelines[0].variables[2].ivr") at the line Load reports
// that key at (a key's line, or a list item's). It returns nil when path is not in the file, or
// when its value as written refers to the environment: such a value is expanded only by Load,
// so a problem found in its unexpanded text is left out rather than reported wrongly.
func (d *Draft) ErrorAt(path, msg string) *Error {
	line, n := lineOf(d.root, path)
	if n == nil || hasEnvRef(n) {
		return nil
	}
	return &Error{File: d.file, Line: line, Path: path, Msg: msg}
}

// child is the value of key in the mapping n, or nil.
func child(n *yaml.Node, key string) *yaml.Node {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// lineOf finds path ("pipelines[0].filter", "pipelines[1].variables[2].ivr") under n and
// returns the line Load reports it at (a key's line, or a list item's) and its value node, or
// 0 and nil.
func lineOf(n *yaml.Node, path string) (int, *yaml.Node) {
	line := n.Line
	for path != "" {
		var seg string
		if seg, path, _ = strings.Cut(path, "."); seg == "" {
			return 0, nil
		}
		key, idx, indexed := strings.Cut(seg, "[")
		if key != "" {
			m := deref(n)
			if m == nil || m.Kind != yaml.MappingNode {
				return 0, nil
			}
			n = nil
			for i := 0; i+1 < len(m.Content); i += 2 {
				if m.Content[i].Value == key {
					line, n = m.Content[i].Line, m.Content[i+1]
					break
				}
			}
			if n == nil {
				return 0, nil
			}
		}
		if indexed {
			j, err := strconv.Atoi(strings.TrimSuffix(idx, "]"))
			if n = deref(n); err != nil || n == nil || n.Kind != yaml.SequenceNode || j < 0 || j >= len(n.Content) {
				return 0, nil
			}
			n = n.Content[j]
			line = n.Line
		}
	}
	return line, n
}

// hasEnvRef reports whether a scalar under n refers to an environment variable.
func hasEnvRef(n *yaml.Node) bool {
	n = deref(n)
	if n == nil {
		return false
	}
	if n.Kind == yaml.ScalarNode {
		return strings.Contains(n.Value, "${")
	}
	return slices.ContainsFunc(n.Content, hasEnvRef)
}

// Has reports whether a problem at path, or under it, is among es.
func (es Errors) Has(path string) bool {
	return slices.ContainsFunc(es, func(e *Error) bool {
		return e.Path == path || strings.HasPrefix(e.Path, path+".") || strings.HasPrefix(e.Path, path+"[")
	})
}

// Merge returns es with more added, sorted by line. Problems without a line that end es (the
// count of problems not shown) stay at the end.
func (es Errors) Merge(more Errors) Errors {
	if len(more) == 0 {
		return es
	}
	body := len(es)
	for body > 0 && es[body-1].Line == 0 {
		body--
	}
	out := append(slices.Clip(es[:body]), more...)
	slices.SortStableFunc(out, func(a, b *Error) int { return cmp.Compare(a.Line, b.Line) })
	return append(out, es[body:]...)
}
