// Package depstest holds the import-arrow test of the module: a table of
// which of the project's packages each package may import (the arrows of
// DESIGN.md's picture), checked against `go list` in deps_test.go, as Go's
// own go/build/deps_test.go does for the standard library.
//
// A new package needs a row before its first import compiles into the
// test's view, and a new arrow needs a change to its row: both are
// decisions about the design, made in review rather than by accident.
// The package has no code of its own.
package depstest
