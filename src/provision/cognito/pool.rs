//! Changing an existing user pool's settings without losing the others.
//!
//! `UpdateUserPool` resets every settable field it is not sent to Cognito's
//! default (MFA, password policy, triggers, e-mail configuration, the sign-up
//! setting, even the feature plan). So every change here is describe → merge →
//! full update: [`merged_pool_update`] sends back every settable field that
//! `DescribeUserPool` returned, and the caller replaces only what it owns.

use std::collections::HashMap;

use aws_sdk_cognitoidentityprovider::operation::update_user_pool::builders::UpdateUserPoolFluentBuilder;
use aws_sdk_cognitoidentityprovider::types::{
    AdminCreateUserConfigType, PasswordPolicyType, UserPoolTierType, UserPoolType, VerifiedAttributeType,
};

use super::Cognito;
use super::errors::{self, CognitoError, Result};
use crate::provision::spec::FeaturePlan;

impl Cognito {
    /// The full `DescribeUserPool` answer, for a merge.
    pub(crate) async fn describe_pool_settings(&self, pool_id: &str) -> Result<UserPoolType> {
        self.pace.wait("DescribeUserPool").await;
        let response = self
            .client
            .describe_user_pool()
            .user_pool_id(pool_id)
            .send()
            .await
            .map_err(|e| errors::map("DescribeUserPool", self.target(), e))?;
        response
            .user_pool
            .ok_or(CognitoError::EmptyResponse { operation: "DescribeUserPool", missing: "the user pool" })
    }

    /// Turns admin-only sign-up on or off, keeping every other setting of the pool.
    #[cfg(test)]
    pub(crate) async fn set_admin_only_signup(&self, pool_id: &str, admin_only: bool) -> Result<()> {
        self.change_pool(pool_id, &PoolChange { admin_only: Some(admin_only), ..PoolChange::default() }).await
    }

    /// Changes the settings cognigate owns on an existing pool in one full
    /// update that keeps every other setting.
    pub(crate) async fn change_pool(&self, pool_id: &str, change: &PoolChange) -> Result<()> {
        let described = self.describe_pool_settings(pool_id).await?;
        self.pace.wait("UpdateUserPool").await;
        let mut update = merged_pool_update(&self.client, &described);
        if let Some(admin_only) = change.admin_only {
            update = update.admin_create_user_config(with_admin_only(described.admin_create_user_config(), admin_only));
        }
        if change.verify_email {
            let mut verified = described.auto_verified_attributes().to_vec();
            if !verified.contains(&VerifiedAttributeType::Email) {
                verified.push(VerifiedAttributeType::Email);
            }
            update = update.set_auto_verified_attributes(Some(verified));
        }
        if let Some(plan) = change.feature_plan {
            update = update.user_pool_tier(UserPoolTierType::from(plan.tier()));
        }
        update.send().await.map(|_| ()).map_err(|e| errors::map("UpdateUserPool", self.target(), e))
    }

    /// The pool's password policy, for telling a user what a password needs.
    pub(crate) async fn password_policy(&self, pool_id: &str) -> Result<Option<PasswordPolicyType>> {
        let described = self.describe_pool_settings(pool_id).await?;
        Ok(described.policies().and_then(|p| p.password_policy()).cloned())
    }
}

/// What `up` changes on an existing pool; everything else is sent back as described.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PoolChange {
    pub(crate) admin_only: Option<bool>,
    /// Add `email` to `AutoVerifiedAttributes` (self sign-up confirms by an e-mailed code).
    pub(crate) verify_email: bool,
    pub(crate) feature_plan: Option<FeaturePlan>,
}

/// An `UpdateUserPool` request carrying every settable field `DescribeUserPool`
/// returned, as Terraform does, so that nothing is reset. The caller overrides
/// the fields it changes.
pub(crate) fn merged_pool_update(
    client: &aws_sdk_cognitoidentityprovider::Client,
    pool: &UserPoolType,
) -> UpdateUserPoolFluentBuilder {
    client
        .update_user_pool()
        .set_user_pool_id(pool.id().map(str::to_owned))
        .set_policies(pool.policies().cloned())
        .set_deletion_protection(pool.deletion_protection().cloned())
        .set_lambda_config(pool.lambda_config().cloned())
        .set_auto_verified_attributes(non_empty(pool.auto_verified_attributes()))
        .set_sms_verification_message(pool.sms_verification_message().map(str::to_owned))
        .set_email_verification_message(pool.email_verification_message().map(str::to_owned))
        .set_email_verification_subject(pool.email_verification_subject().map(str::to_owned))
        .set_verification_message_template(pool.verification_message_template().cloned())
        .set_sms_authentication_message(pool.sms_authentication_message().map(str::to_owned))
        .set_user_attribute_update_settings(pool.user_attribute_update_settings().cloned())
        .set_mfa_configuration(pool.mfa_configuration().cloned())
        .set_device_configuration(pool.device_configuration().cloned())
        .set_email_configuration(pool.email_configuration().cloned())
        .set_sms_configuration(pool.sms_configuration().cloned())
        .set_user_pool_tags(pool.user_pool_tags().map(sendable_tags).filter(|t| !t.is_empty()))
        // `UnusedAccountValidityDays` (deprecated) never leaves: see `OnlyMembersThatAreSet`.
        .set_admin_create_user_config(pool.admin_create_user_config().cloned())
        .set_user_pool_add_ons(pool.user_pool_add_ons().cloned())
        .set_account_recovery_setting(pool.account_recovery_setting().cloned())
        .set_pool_name(pool.name().map(str::to_owned))
        .set_user_pool_tier(pool.user_pool_tier().cloned())
        .set_key_configuration(pool.key_configuration().cloned())
        .set_issuer_configuration(pool.issuer_configuration().cloned())
        .set_acr_configuration(pool.acr_configuration().cloned())
}

/// The pool's sign-up configuration with only `AllowAdminCreateUserOnly` changed.
fn with_admin_only(current: Option<&AdminCreateUserConfigType>, admin_only: bool) -> AdminCreateUserConfigType {
    AdminCreateUserConfigType::builder()
        .allow_admin_create_user_only(admin_only)
        .set_invite_message_template(current.and_then(|c| c.invite_message_template()).cloned())
        .build()
}

/// Tags that can be sent back: the `aws:` prefix is reserved for AWS itself,
/// and Cognito refuses such keys in UpdateUserPool.
fn sendable_tags(tags: &HashMap<String, String>) -> HashMap<String, String> {
    tags.iter().filter(|(key, _)| !key.starts_with("aws:")).map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn non_empty<T: Clone>(list: &[T]) -> Option<Vec<T>> {
    (!list.is_empty()).then(|| list.to_vec())
}

/// A human description of a password policy: "at least 8 characters, with an
/// uppercase letter, a lowercase letter, a number and a symbol".
pub(crate) fn describe_password_policy(policy: &PasswordPolicyType) -> String {
    let mut needs = Vec::new();
    if policy.require_uppercase {
        needs.push("an uppercase letter");
    }
    if policy.require_lowercase {
        needs.push("a lowercase letter");
    }
    if policy.require_numbers {
        needs.push("a number");
    }
    if policy.require_symbols {
        needs.push("a symbol");
    }
    let mut text = format!("at least {} characters", policy.minimum_length.unwrap_or(8));
    if let Some((last, first)) = needs.split_last() {
        text.push_str(", with ");
        if !first.is_empty() {
            text.push_str(&first.join(", "));
            text.push_str(" and ");
        }
        text.push_str(last);
    }
    if let Some(history) = policy.password_history_size.filter(|n| *n > 0) {
        text.push_str(&format!(", not one of the last {history} passwords"));
    }
    text
}

/// The full update's shape on the SDK's replay client (moto keeps what an
/// update omits only because it merges: real Cognito resets it).
#[cfg(test)]
mod request_shape {
    use aws_smithy_http_client::test_util::StaticReplayClient;
    use serde_json::Value;

    use crate::provision::cognito::replay::{answer, cognito};

    #[tokio::test]
    async fn the_signup_change_sends_back_every_described_setting() {
        let described = r#"{"UserPool":{"Id":"us-east-1_abc","Name":"demo","MfaConfiguration":"OPTIONAL",
            "Policies":{"PasswordPolicy":{"MinimumLength":14,"RequireUppercase":true,"RequireLowercase":false,
              "RequireNumbers":true,"RequireSymbols":false,"TemporaryPasswordValidityDays":3}},
            "DeletionProtection":"ACTIVE","AutoVerifiedAttributes":["email"],
            "EmailConfiguration":{"EmailSendingAccount":"DEVELOPER","SourceArn":"arn:aws:ses:us-east-1:1:identity/x"},
            "LambdaConfig":{"PreSignUp":"arn:aws:lambda:us-east-1:1:function:f"},
            "UserPoolTags":{"cognigate:stack":"demo","aws:cloudformation:stack-name":"cf"},
            "AdminCreateUserConfig":{"AllowAdminCreateUserOnly":false,"UnusedAccountValidityDays":7,
              "InviteMessageTemplate":{"EmailSubject":"Welcome"}},
            "UserPoolTier":"PLUS","AccountRecoverySetting":{"RecoveryMechanisms":[{"Priority":1,"Name":"verified_email"}]}}}"#;
        let replay = StaticReplayClient::new(vec![answer(described), answer("{}")]);
        cognito(&replay).set_admin_only_signup("us-east-1_abc", true).await.unwrap();
        let requests: Vec<_> = replay.actual_requests().collect();
        let body: Value = serde_json::from_slice(requests[1].body().bytes().unwrap()).unwrap();
        assert_eq!(body["UserPoolId"], "us-east-1_abc");
        assert_eq!(body["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"], true);
        assert_eq!(body["AdminCreateUserConfig"]["InviteMessageTemplate"]["EmailSubject"], "Welcome");
        assert!(body["AdminCreateUserConfig"].get("UnusedAccountValidityDays").is_none(), "{body}");
        assert_eq!(body["Policies"]["PasswordPolicy"]["MinimumLength"], 14);
        assert_eq!(body["MfaConfiguration"], "OPTIONAL");
        assert_eq!(body["DeletionProtection"], "ACTIVE");
        assert_eq!(body["AutoVerifiedAttributes"], serde_json::json!(["email"]));
        assert_eq!(body["EmailConfiguration"]["EmailSendingAccount"], "DEVELOPER");
        assert_eq!(body["LambdaConfig"]["PreSignUp"], "arn:aws:lambda:us-east-1:1:function:f");
        assert_eq!(body["UserPoolTags"], serde_json::json!({ "cognigate:stack": "demo" }), "aws: tags are reserved");
        assert_eq!(body["UserPoolTier"], "PLUS", "the feature plan is kept");
        assert_eq!(body["AccountRecoverySetting"]["RecoveryMechanisms"][0]["Name"], "verified_email");
    }
}
