package transform

import (
	"reflect"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm/runtime"
)

// fetchName is the env field through which memberPatcher routes map member access. It is not a
// name users write.
const fetchName = "$fetch"

// fetchMember is what `m.key` and `m["key"]` do for decoded records, without the reflection
// (and the allocation per access) of expr's generic fetch: almost every expression reads a
// field of a map[string]any row. Anything else falls back to expr's own semantics and errors.
func fetchMember(from, key any) any {
	if m, ok := from.(map[string]any); ok {
		if k, ok := key.(string); ok {
			return m[k]
		}
	}
	return runtime.Fetch(from, key)
}

var mapOfAny = reflect.TypeFor[map[string]any]()

// memberPatcher rewrites member access with a constant string key on a map[string]any or an
// untyped value (after.tier, after.customer.tier, value["x"]) into a call of fetchMember. The
// call is one of expr's typed function signatures, so it costs no argument buffer either.
// Optional access (a?.b) and method calls keep expr's own compilation, which they need for
// their short-circuit jumps; typed maps such as headers keep their static result type.
type memberPatcher struct{}

func (memberPatcher) Visit(node *ast.Node) {
	m, ok := (*node).(*ast.MemberNode)
	if !ok || m.Optional || m.Method {
		return
	}
	if _, ok := m.Property.(*ast.StringNode); !ok {
		return
	}
	if t := m.Node.Type(); t != nil && t != mapOfAny && t.Kind() != reflect.Interface {
		return
	}
	callee := &ast.IdentifierNode{Value: fetchName}
	callee.SetLocation(m.Location())
	ast.Patch(node, &ast.CallNode{Callee: callee, Arguments: []ast.Node{m.Node, m.Property}})
}
