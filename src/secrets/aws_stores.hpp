#pragma once
// The AWS secret stores, spoken as the SDKs speak them: SigV4-signed JSON-1.1 calls (POST /,
// X-Amz-Target) to the region's endpoint, or to AWS_ENDPOINT_URL_<SERVICE> / AWS_ENDPOINT_URL
// (aws/environment.hpp), with the default credential chain (aws/credential_chain.hpp: environment,
// web identity, shared file, container endpoint, IMDSv2), cached per store and refreshed before expiry.
//
//   {type: aws_sm,  secret_id: ID, region?, ttl?, failure_ttl?, json_key?}
//       secretsmanager.GetSecretValue {"SecretId": ID} → SecretString (empty or absent: an error)
//   {type: aws_ssm, name: N, region?, with_decryption? (true), ttl?, failure_ttl?, json_key?}
//       AmazonSSM.GetParameter {"Name": N, "WithDecryption": …} → Parameter.Value
//
// Display names: the secret id / the parameter name. Errors carry the store's error type and
// message (never a value or a key).
#include <memory>
#include <string>

#include "secrets/remote_source.hpp"

namespace iron::secrets {

std::unique_ptr<store_fetcher> make_aws_sm_fetcher(std::string secret_id, std::string region);
std::unique_ptr<store_fetcher> make_aws_ssm_fetcher(std::string name, std::string region, bool with_decryption);

}  // namespace iron::secrets
