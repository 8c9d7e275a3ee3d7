#!/bin/sh
# One-shot (compose service minio-init): create surveil's bucket in the MinIO that Milvus
# also uses, and a MinIO user whose policy allows that bucket only. Idempotent.
set -eu
mc alias set local http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD"
mc mb --ignore-existing "local/$SURVEIL_S3_BUCKET"
cat > /tmp/surveil-policy.json <<POLICY
{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
     "Resource": ["arn:aws:s3:::$SURVEIL_S3_BUCKET"]},
    {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
     "Resource": ["arn:aws:s3:::$SURVEIL_S3_BUCKET/*"]}
  ]
}
POLICY
mc admin policy create local surveil /tmp/surveil-policy.json 2>/dev/null \
  || echo "minio-init: policy surveil exists"
mc admin user add local "$SURVEIL_S3_ACCESS_KEY" "$SURVEIL_S3_SECRET_KEY"
mc admin policy attach local surveil --user "$SURVEIL_S3_ACCESS_KEY" 2>/dev/null \
  || echo "minio-init: policy already attached"
echo "minio-init: bucket $SURVEIL_S3_BUCKET ready"
