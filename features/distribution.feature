@area:distribution
Feature: The registry HTTP API (distribution)
  A registry speaks the OCI distribution API, which began as the Docker Registry
  HTTP API V2: blobs are uploaded in a session and fetched by digest; manifests
  are stored byte for byte under a tag or their digest. These scenarios speak
  to the registry directly, with no engine in between. Repository names are
  unique per scenario.

  @spec:distribution.api-version
  Scenario: The /v2/ endpoint answers with the API version
    When I send "GET /v2/" to the registry
    Then the registry answers 200
    And the registry response header "Docker-Distribution-API-Version" is "registry/2.0"

  @spec:distribution.docker-manifest
  Scenario: A Docker image manifest (schema 2) is stored byte for byte
    Given a Docker image manifest "image" whose blobs are in "{repo}"
    When I push manifest "image" to "{repo}" as "v1"
    Then the registry answers 201
    And the response carries the digest of manifest "image"
    And the registry serves manifest "image" from "{repo}" as "v1" and by digest, byte for byte

  @spec:distribution.oci-manifest
  Scenario: An OCI image manifest is stored byte for byte
    Given an OCI image manifest "image" whose blobs are in "{repo}"
    When I push manifest "image" to "{repo}" as "v1"
    Then the registry answers 201
    And the response carries the digest of manifest "image"
    And the registry serves manifest "image" from "{repo}" as "v1" and by digest, byte for byte

  @spec:distribution.manifest-list
  Scenario: A Docker manifest list naming two images is stored byte for byte
    Given a Docker image manifest "amd64" whose blobs are in "{repo}"
    And a Docker image manifest "arm64" whose blobs are in "{repo}"
    And I push manifest "amd64" to "{repo}" by digest
    And I push manifest "arm64" to "{repo}" by digest
    And a Docker manifest list "list" of the manifests "amd64" and "arm64"
    When I push manifest "list" to "{repo}" as "multi"
    Then the registry answers 201
    And the response carries the digest of manifest "list"
    And the registry serves manifest "list" from "{repo}" as "multi" and by digest, byte for byte

  @spec:distribution.oci-index
  Scenario: An OCI image index naming two images is stored byte for byte
    Given an OCI image manifest "amd64" whose blobs are in "{repo}"
    And an OCI image manifest "arm64" whose blobs are in "{repo}"
    And I push manifest "amd64" to "{repo}" by digest
    And I push manifest "arm64" to "{repo}" by digest
    And an OCI index "index" of the manifests "amd64" and "arm64"
    When I push manifest "index" to "{repo}" as "multi"
    Then the registry answers 201
    And the response carries the digest of manifest "index"
    And the registry serves manifest "index" from "{repo}" as "multi" and by digest, byte for byte

  @spec:distribution.upload-post-put
  Scenario: A blob uploaded monolithically (POST, then PUT with the whole blob) can be fetched
    Given a random blob "data" of 5000 bytes
    When I start an upload in "{repo}"
    Then the registry answers 202
    When I finish the upload with the whole of blob "data" and the digest of blob "data"
    Then the registry answers 201
    And the response carries the digest of blob "data"
    And the blob "data" is in "{repo}"

  @spec:distribution.upload-chunked
  Scenario: A blob uploaded in chunks with Content-Range is put together in order
    Given a random blob "data" of 3000 bytes
    When I start an upload in "{repo}"
    And I send bytes 0 to 999 of blob "data" as a chunk
    Then the registry answers 202
    And the registry response header "Range" is "0-999"
    When I send bytes 1000 to 2999 of blob "data" as a chunk
    Then the registry answers 202
    And the registry response header "Range" is "0-2999"
    When I finish the upload with the digest of blob "data"
    Then the registry answers 201
    And the blob "data" is in "{repo}"

  @spec:distribution.upload-streamed
  Scenario: A blob streamed in one PATCH without Content-Range (chunked transfer encoding) is stored
    Given a random blob "data" of 20000 bytes
    When I start an upload in "{repo}"
    And I stream blob "data" in one PATCH without a Content-Range
    Then the registry answers 202
    And the registry response header "Range" is "0-19999"
    When I finish the upload with the digest of blob "data"
    Then the registry answers 201
    And the blob "data" is in "{repo}"

  @spec:distribution.chunk-out-of-order
  Scenario: A chunk that does not start where the upload ends is refused with 416 and changes nothing
    Given a random blob "data" of 300 bytes
    When I start an upload in "{repo}"
    And I send bytes 0 to 99 of blob "data" as a chunk
    Then the registry answers 202
    When I send bytes 200 to 299 of blob "data" as a chunk
    Then the registry answers 416
    When I ask for the status of the upload
    Then the registry answers 204
    And the registry response header "Range" is "0-99"
    When I send bytes 100 to 299 of blob "data" as a chunk
    And I finish the upload with the digest of blob "data"
    Then the registry answers 201
    And the blob "data" is in "{repo}"

  @spec:distribution.blob-range
  Scenario: A blob can be fetched in part with a Range header
    Given a random blob "data" of 1000 bytes
    And the blob "data" is uploaded to "{repo}"
    When I fetch bytes 100 to 199 of blob "data" from "{repo}"
    Then the registry answers 206
    And the registry response header "Content-Range" is "bytes 100-199/1000"
    And the body is bytes 100 to 199 of blob "data"

  @spec:distribution.cross-mount
  Scenario: A blob is mounted from another repository without uploading it again
    Given a random blob "data" of 2000 bytes
    And the blob "data" is uploaded to "{repo}"
    And the blob "data" is not in "{repo2}"
    When I mount blob "data" into "{repo2}" from "{repo}"
    Then the registry answers 201
    And the response carries the digest of blob "data"
    And the blob "data" is in "{repo2}"

  @spec:distribution.digest-mismatch
  Scenario: An upload whose content does not match its digest is refused and nothing is stored
    Given a random blob "data" of 1000 bytes
    And a random blob "claimed" of 1000 bytes
    When I start an upload in "{repo}"
    And I finish the upload with the whole of blob "data" and the digest of blob "claimed"
    Then the registry answers 400 with the error code DIGEST_INVALID
    And the blob "data" is not in "{repo}"
    And the blob "claimed" is not in "{repo}"

  @spec:distribution.manifest-blob-unknown
  Scenario: A manifest that names a blob the registry does not have is refused
    Given a Docker image manifest "image" whose layer is not in "{repo}"
    When I push manifest "image" to "{repo}" as "v1"
    Then the registry answers 400 with the error code MANIFEST_BLOB_UNKNOWN
    And the registry has no manifest "image" in "{repo}"
    And the tag "v1" of "{repo}" does not exist

  @spec:distribution.name-invalid
  Scenario: A repository name with ".." is refused and nothing is stored under any name
    Given a Docker image manifest "image" whose blobs are in "{repo}"
    When I push manifest "image" to "{repo}..x" as "v1"
    Then the registry refuses the repository name
    When I push manifest "image" to "{repo}/../{repo2}" as "v1"
    Then the registry does not accept it
    And the registry has no manifest "image" in "{repo}"
    And the tag "v1" of "{repo2}" does not exist

  @spec:distribution.tags-pagination
  Scenario: The tags list is paginated with n and last, and a Link header to the next page
    Given a Docker image manifest "image" whose blobs are in "{repo}"
    And manifest "image" is tagged "t1 t2 t3 t4 t5" in "{repo}"
    When I list the tags of "{repo}" with "n=2"
    Then the tags listed are "t1 t2"
    When I follow the link to the next page
    Then the tags listed are "t3 t4"
    When I list the tags of "{repo}" with "n=2&last=t4"
    Then the tags listed are "t5"
    And the response has no link to a next page

  @spec:distribution.catalog-pagination
  Scenario: The catalog is paginated with n and last, and a Link header to the next page
    Given an image is pushed to each of "{repo}-a {repo}-b {repo}-c"
    When I list the catalog with "n=2&last={repo}"
    Then the repositories listed are "{repo}-a {repo}-b"
    When I follow the link to the next page
    Then the repositories listed start with "{repo}-c"

  @spec:distribution.manifest-delete
  Scenario: A manifest deleted by digest is gone, with its tag
    Given a Docker image manifest "image" whose blobs are in "{repo}"
    And I push manifest "image" to "{repo}" as "v1"
    When I delete manifest "image" from "{repo}"
    Then the registry answers 202
    And the registry has no manifest "image" in "{repo}"
    And the tag "v1" of "{repo}" does not exist

  @spec:distribution.delete-disabled
  Scenario: A registry with deletion disabled refuses to delete a manifest and keeps it
    Given I use the authenticated registry with its credentials
    And a Docker image manifest "image" whose blobs are in "{repo}"
    And I push manifest "image" to "{repo}" as "v1"
    When I delete manifest "image" from "{repo}"
    Then the registry answers 405 with the error code UNSUPPORTED
    And the registry serves manifest "image" from "{repo}" as "v1" and by digest, byte for byte

  @spec:distribution.auth-challenge
  Scenario: A registry that asks for credentials challenges a client without them, then lets it in
    Given I use the authenticated registry without its credentials
    When I send "GET /v2/" to the registry
    Then the registry answers 401 with the error code UNAUTHORIZED
    And the registry response header "WWW-Authenticate" starts with "Basic realm="
    When I use the authenticated registry with its credentials
    And I send "GET /v2/" to the registry
    Then the registry answers 200
