import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { SigilError } from '../../core/errors.ts';
import { digest } from '../../core/hash.ts';
import { toHex } from '../../core/hex.ts';

/**
 * The Intel SGX Root CA, anchor of every DCAP chain (PCK certificates, TCB signing, CRLs).
 * Published at https://certificates.trustedservices.intel.com/Intel_SGX_Provisioning_Certification_RootCA.pem;
 * valid 2018-05-21..2049-12-31. The certificate is embedded and its SHA-256 is pinned, so an edit
 * of the text below cannot silently change the trust anchor.
 */
export const INTEL_SGX_ROOT_CA_PEM = `-----BEGIN CERTIFICATE-----
MIICjzCCAjSgAwIBAgIUImUM1lqdNInzg7SVUr9QGzknBqwwCgYIKoZIzj0EAwIw
aDEaMBgGA1UEAwwRSW50ZWwgU0dYIFJvb3QgQ0ExGjAYBgNVBAoMEUludGVsIENv
cnBvcmF0aW9uMRQwEgYDVQQHDAtTYW50YSBDbGFyYTELMAkGA1UECAwCQ0ExCzAJ
BgNVBAYTAlVTMB4XDTE4MDUyMTEwNDUxMFoXDTQ5MTIzMTIzNTk1OVowaDEaMBgG
A1UEAwwRSW50ZWwgU0dYIFJvb3QgQ0ExGjAYBgNVBAoMEUludGVsIENvcnBvcmF0
aW9uMRQwEgYDVQQHDAtTYW50YSBDbGFyYTELMAkGA1UECAwCQ0ExCzAJBgNVBAYT
AlVTMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEC6nEwMDIYZOj/iPWsCzaEKi7
1OiOSLRFhWGjbnBVJfVnkY4u3IjkDYYL0MxO4mqsyYjlBalTVYxFP2sJBK5zlKOB
uzCBuDAfBgNVHSMEGDAWgBQiZQzWWp00ifODtJVSv1AbOScGrDBSBgNVHR8ESzBJ
MEegRaBDhkFodHRwczovL2NlcnRpZmljYXRlcy50cnVzdGVkc2VydmljZXMuaW50
ZWwuY29tL0ludGVsU0dYUm9vdENBLmRlcjAdBgNVHQ4EFgQUImUM1lqdNInzg7SV
Ur9QGzknBqwwDgYDVR0PAQH/BAQDAgEGMBIGA1UdEwEB/wQIMAYBAf8CAQEwCgYI
KoZIzj0EAwIDSQAwRgIhAOW/5QkR+S9CiSDcNoowLuPRLsWGf/Yi7GSX94BgwTwg
AiEA4J0lrHoMs+Xo5o/sX6O9QWxHRAvZUGOdRQ7cvqRXaqI=
-----END CERTIFICATE-----
`;

/** SHA-256 of the root's DER encoding. */
export const INTEL_SGX_ROOT_CA_SHA256 = '44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3';

let pinnedRoot: Promise<x509.X509Certificate> | undefined;

/** The embedded root, after checking it against the pin (once per process). */
export function intelSgxRootCa(): Promise<x509.X509Certificate> {
  pinnedRoot ??= (async () => {
    const root = new x509.X509Certificate(INTEL_SGX_ROOT_CA_PEM);
    const fingerprint = toHex(await digest('SHA-256', new Uint8Array(root.rawData)));
    if (fingerprint !== INTEL_SGX_ROOT_CA_SHA256) {
      throw new SigilError('tdx.root_pin_mismatch', 'the embedded Intel SGX Root CA does not match its pinned SHA-256', { fingerprint });
    }
    return root;
  })();
  return pinnedRoot;
}
