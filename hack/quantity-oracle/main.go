// quantity-oracle reads one quantity per line on stdin and prints, per line, what the API server's
// parser (k8s.io/apimachinery/pkg/api/resource.ParseQuantity) makes of it, so the TypeScript parser in
// src/policy can be cross-checked against the real thing:
//
//	ok <canonical String()> <exact value in nano units> <MilliValue-style ceil of the value in milli units>
//	err
//
// The nano and milli figures are exact big integers (not int64) so huge quantities compare too.
// JSON-unmarshalled quantities are trimmed of spaces first; this prints the raw ParseQuantity result.
package main

import (
	"bufio"
	"fmt"
	"math/big"
	"os"

	"gopkg.in/inf.v0"
	"k8s.io/apimachinery/pkg/api/resource"
)

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for in.Scan() {
		q, err := resource.ParseQuantity(in.Text())
		if err != nil {
			fmt.Fprintln(out, "err")
			continue
		}
		dec := q.AsDec()
		fmt.Fprintf(out, "ok %s %s %s\n", q.String(), scaled(dec, 9, inf.RoundDown), scaled(dec, 3, inf.RoundCeil))
	}
}

// scaled returns dec × 10^digits rounded to an integer.
func scaled(dec *inf.Dec, digits inf.Scale, rounder inf.Rounder) *big.Int {
	r := new(inf.Dec).Round(dec, digits, rounder)
	unscaled := r.UnscaledBig()
	shift := int64(digits) - int64(r.Scale())
	result := new(big.Int).Set(unscaled)
	if shift > 0 {
		result.Mul(result, new(big.Int).Exp(big.NewInt(10), big.NewInt(shift), nil))
	}
	return result
}
