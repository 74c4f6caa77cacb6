#!/usr/bin/env python3
"""Grows each record of a delivered CloudTrail file (one record per line, as kmsim writes them)
with fields a record AWS delivers also carries and kmsim does not read (`tlsDetails`,
`sessionCredentialFromConsole`, `additionalEventData`), to time an import on a file of a real
trail's size: kmsim's records are about 1 KB, AWS's often 2 KB or more.

    benches/grow_trail.py t1m.json t1m-2g.json     # 1.0 GB -> 2.1 GB, the same records
"""
import sys

HEAD = '{"eventVersion":"1.11",'
PAD = (
    '"tlsDetails":{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256",'
    '"clientProvidedHostHeader":"kms.us-east-1.amazonaws.com"},'
    '"sessionCredentialFromConsole":"false",'
    '"additionalEventData":{"SignatureVersion":"SigV4","CipherSuite":"ECDHE-RSA-AES128-GCM-SHA256",'
    '"bytesTransferredIn":0,"AuthenticationMethod":"AuthHeader",'
    '"x-amz-id-2":"' + "Q" * 300 + '","note":"' + "padding to the size of a record AWS delivers; " * 10 + '"},'
)


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    grown = 0
    with open(sys.argv[1]) as src, open(sys.argv[2], "w") as out:
        for line in src:
            if line.startswith(HEAD):
                line = HEAD + PAD + line[len(HEAD):]
                grown += 1
            out.write(line)
    print(f"{grown} records grown", file=sys.stderr)


if __name__ == "__main__":
    main()
