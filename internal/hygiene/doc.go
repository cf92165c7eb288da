// Package hygiene holds the project's tests of itself: every package has a
// package doc, and the producer CLI keeps heavy dependencies out.
package hygiene
