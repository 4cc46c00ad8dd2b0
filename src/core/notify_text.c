/* SPDX-License-Identifier: MIT */
/* The words of notification mail, in English and Simplified Chinese
 * (qun_mail_render, include/qun/notify.h): each kind is a subject and a few
 * sentences built from the parameters the notification stored, with people and
 * groups by name and times in UTC, ending with a link into the console.  The
 * console's own words for the same kinds are in web/js/i18n.js. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qun/notify.h"
#include "qun/passkey.h"

/* A person's name: "display name (username)", or the username alone. */
static void name_of(const json_t *p, char *out, size_t size) {
    const char *u = json_string_value(json_object_get(p, "username"));
    const char *d = json_string_value(json_object_get(p, "display_name"));
    if (d && u && strcmp(d, u) != 0)
        snprintf(out, size, "%s (%s)", d, u);
    else
        snprintf(out, size, "%s", u ? u : d ? d : "?");
}

static const char *str(const json_t *params, const char *key) {
    const char *s = json_string_value(json_object_get(params, key));
    return s ? s : "";
}

static void when(const json_t *params, const char *key, char *out, size_t size) {
    json_t *v = json_object_get(params, key);
    time_t t = (time_t)(json_is_integer(v) ? json_integer_value(v) : 0);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, size, "%Y-%m-%d %H:%M UTC", &tm);
}

static const char *base_url(void) {
    const char *b = qun_notify_cfg.console_url;
    if (!b || !*b) b = qun_passkey_cfg.origin;
    return b ? b : "";
}

/* What an approver is, as the end of "As ..." / "你是...". */
static void approver_role(const json_t *p, bool zh, char *out, size_t size) {
    const char *k = str(p, "approval_kind"), *org = str(p, "org_name");
    char subject[200];
    name_of(json_object_get(p, "subject"), subject, sizeof subject);
    if (strcmp(k, "guardian") == 0)
        snprintf(out, size, zh ? "%s 的监护人" : "the guardian of %s", subject);
    else if (strcmp(k, "school_admin") == 0)
        snprintf(out, size, zh ? "学校「%s」的管理员" : "an admin of the school “%s”", org);
    else if (strcmp(k, "org_admin") == 0)
        snprintf(out, size, zh ? "组织「%s」的管理员" : "an admin of the organization “%s”", org);
    else
        snprintf(out, size, zh ? "服务器管理员" : "a server admin");
}

bool qun_mail_render(const char *kind, const json_t *p, const char *lang, const char *code, char **subject,
                     char **body) {
    bool zh = lang && strcmp(lang, "zh-CN") == 0;
    const char *g = str(p, "group_name"), *url = base_url();
    char by[200], t1[40], t2[40], role[300];
    name_of(json_object_get(p, "by"), by, sizeof by);
    char *s = NULL, *b = NULL;
    size_t sn = 0, bn = 0;
    FILE *fs = open_memstream(&s, &sn), *fb = open_memstream(&b, &bn);
    if (!fs || !fb) {
        if (fs) fclose(fs);
        if (fb) fclose(fb);
        free(s);
        free(b);
        return false;
    }
    const char *footer_link = "/#/inbox";
    if (strcmp(kind, "approval.requested") == 0) {
        char req[200];
        name_of(json_object_get(p, "requested_by"), req, sizeof req);
        approver_role(p, zh, role, sizeof role);
        when(p, "expires_at", t1, sizeof t1);
        json_t *im = json_object_get(p, "impact");
        long long members = (long long)json_integer_value(json_object_get(im, "members"));
        long long msgs = (long long)json_integer_value(json_object_get(im, "messages"));
        long long files = (long long)json_integer_value(json_object_get(im, "files"));
        bool keep = strcmp(str(im, "messages_rule"), "keep") == 0;
        if (zh) {
            fprintf(fs, "需要你的批准：解散群组「%s」", g);
            fprintf(fb,
                    "%s 申请解散群组「%s」。你是%s，这次解散需要你的批准。\n\n"
                    "影响：%lld 名成员，%lld 条消息（%s），%lld 个文件。\n\n"
                    "请在 %s 之前批准或拒绝：%s/#/approvals\n",
                    req, g, role, members, msgs, keep ? "仅群主可只读保留" : "将被删除", files, t1, url);
        } else {
            fprintf(fs, "Your approval is needed: dissolve “%s”", g);
            fprintf(fb,
                    "%s asks to dissolve the group “%s”. As %s, your approval is needed.\n\n"
                    "What it affects: %lld members, %lld messages (%s), %lld files.\n\n"
                    "Approve or reject before %s: %s/#/approvals\n",
                    req, g, role, members, msgs, keep ? "kept read-only for the owner" : "to be deleted",
                    files, t1, url);
        }
    } else if (strcmp(kind, "transfer.offered") == 0) {
        char from[200];
        name_of(json_object_get(p, "from"), from, sizeof from);
        if (zh) {
            fprintf(fs, "%s 想把群组「%s」转让给你", from, g);
            fprintf(fb, "%s 想让你成为群组「%s」的群主。请在 qun 中接受或拒绝：%s/#/groups\n", from, g, url);
        } else {
            fprintf(fs, "%s offers you ownership of “%s”", from, g);
            fprintf(
                fb,
                "%s wants to make you the owner of the group “%s”. Accept or decline in qun: %s/#/groups\n",
                from, g, url);
        }
    } else if (strcmp(kind, "invitation.received") == 0) {
        bool admin = strcmp(str(p, "role"), "admin") == 0;
        if (zh) {
            fprintf(fs, "%s 邀请你加入「%s」", by, g);
            fprintf(fb, "%s 邀请你以%s身份加入群组「%s」。请在 qun 中接受或拒绝：%s/#/groups\n", by,
                    admin ? "管理员" : "成员", g, url);
        } else {
            fprintf(fs, "%s invited you to “%s”", by, g);
            fprintf(fb,
                    "%s invited you to join the group “%s” as %s. Accept or decline in qun: %s/#/groups\n",
                    by, g, admin ? "an admin" : "a member", url);
        }
    } else if (strcmp(kind, "dissolution.pending") == 0) {
        when(p, "dissolves_at", t1, sizeof t1);
        bool keep = strcmp(str(p, "messages"), "keep") == 0;
        if (zh) {
            fprintf(fs, "群组「%s」将于 %s 解散", g, t1);
            fprintf(
                fb,
                "%s 已申请解散群组「%s」，群组将于 %s 解散。在此之前你仍可阅读群组，并导出自己的消息副本。"
                "解散后，消息%s。\n\n%s/#/groups\n",
                by, g, t1, keep ? "仅群主可只读查看" : "将被删除", url);
        } else {
            fprintf(fs, "“%s” will be dissolved on %s", g, t1);
            fprintf(fb,
                    "%s has asked to dissolve the group “%s”. It will be dissolved on %s; until then you can "
                    "still "
                    "read it and export your own copy of its messages. After that, its messages "
                    "%s.\n\n%s/#/groups\n",
                    by, g, t1, keep ? "stay readable by the owner only" : "will be deleted", url);
        }
    } else if (strcmp(kind, "dissolution.cancelled") == 0 || strcmp(kind, "dissolution.rejected") == 0 ||
               strcmp(kind, "dissolution.expired") == 0) {
        char k = kind[13]; /* c, r or e */
        if (zh) {
            fprintf(fs, "群组「%s」的解散%s", g, k == 'c' ? "已取消" : k == 'r' ? "被驳回" : "申请已过期");
            if (k == 'e')
                fprintf(fb, "群组「%s」的解散所需的批准未能按时全部完成。群组保持不变。\n", g);
            else
                fprintf(fb, "%s %s了群组「%s」的解散。群组保持不变。\n", by, k == 'c' ? "取消" : "驳回", g);
        } else {
            fprintf(fs, "The dissolution of “%s” was %s", g,
                    k == 'c'   ? "cancelled"
                    : k == 'r' ? "rejected"
                               : "not approved in time");
            if (k == 'e')
                fprintf(
                    fb,
                    "The approvals the dissolution of “%s” waited for did not all come in time. The group "
                    "stays as it is.\n",
                    g);
            else
                fprintf(fb, "%s %s the dissolution of the group “%s”. The group stays as it is.\n", by,
                        k == 'c' ? "cancelled" : "rejected", g);
        }
    } else if (strcmp(kind, "dissolution.dissolved") == 0) {
        when(p, "restorable_until", t1, sizeof t1);
        const char *succ = str(p, "successor_name");
        if (zh) {
            fprintf(fs, "群组「%s」已解散", g);
            fprintf(fb, "群组「%s」已解散。在 %s 之前，群主仍可恢复它。", g, t1);
            if (*succ) fprintf(fb, "成员已转入新群组「%s」。", succ);
            fprintf(fb, "\n");
        } else {
            fprintf(fs, "“%s” has been dissolved", g);
            fprintf(fb, "The group “%s” has been dissolved. Its owner can still restore it until %s.", g, t1);
            if (*succ) fprintf(fb, " Its members now meet in the new group “%s”.", succ);
            fprintf(fb, "\n");
        }
    } else if (strcmp(kind, "dissolution.restored") == 0) {
        if (zh) {
            fprintf(fs, "群组「%s」已恢复", g);
            fprintf(fb, "%s 恢复了群组「%s」，你可以像以前一样使用它。\n\n%s/#/groups\n", by, g, url);
        } else {
            fprintf(fs, "“%s” has been restored", g);
            fprintf(fb, "%s restored the group “%s”: you can use it again as before.\n\n%s/#/groups\n", by, g,
                    url);
        }
    } else if (strcmp(kind, "email.verify") == 0) {
        when(p, "expires_at", t1, sizeof t1);
        const char *c = code ? code : "";
        footer_link = "/#/me";
        if (zh) {
            fprintf(fs, "你的 qun 验证码：%s", c);
            fprintf(fb,
                    "%s，你好：\n\n请在 qun 中输入以下验证码，确认 %s 是你的邮箱：\n\n    %s\n\n"
                    "验证码有效期至 %s。如果这不是你本人的操作，请忽略此邮件。\n",
                    str(p, "username"), str(p, "address"), c, t1);
        } else {
            fprintf(fs, "Your qun verification code: %s", c);
            fprintf(fb,
                    "Hello %s,\n\nType this code in qun to confirm that %s is your address:\n\n    %s\n\n"
                    "It is valid until %s. If you did not ask for it, you can ignore this mail.\n",
                    str(p, "username"), str(p, "address"), c, t1);
        }
    } else if (strcmp(kind, "email.invite") == 0) {
        char minor[200];
        name_of(json_object_get(p, "minor"), minor, sizeof minor);
        when(p, "expires_at", t2, sizeof t2);
        const char *org = str(p, "org_name");
        bool guardian = strcmp(str(p, "role"), "guardian") == 0;
        footer_link = NULL;
        if (zh) {
            fprintf(fs, "%s 邀请你加入 qun", by);
            if (guardian)
                fprintf(fb, "%s 邀请你以 %s 的监护人身份加入学校「%s」的 qun。", by, minor, org);
            else
                fprintf(fb, "%s 邀请你成为组织「%s」在 qun 上的管理员。", by, org);
            fprintf(fb,
                    "可能有一项决定正在等你：注册（或登录）后即可看到，并可批准或拒绝。\n\n"
                    "注册或登录：%s/#/invite/%s\n\n此链接在 %s 之前有效，且只能使用一次。\n",
                    url, code ? code : "", t2);
        } else {
            fprintf(fs, "%s invites you to qun", by);
            if (guardian)
                fprintf(fb, "%s invites you to the school “%s” on qun, as the guardian of %s.", by, org,
                        minor);
            else
                fprintf(fb, "%s invites you to administer the organization “%s” on qun.", by, org);
            fprintf(fb,
                    " A decision may be waiting for you: once you have an account, you will see it and can "
                    "approve or reject it.\n\nCreate your account (or sign in): %s/#/invite/%s\n\n"
                    "The link works once, until %s.\n",
                    url, code ? code : "", t2);
        }
    } else {
        fprintf(fs, zh ? "qun 通知" : "A qun notification");
        fprintf(fb, zh ? "你有一条新通知：%s/#/inbox\n" : "You have a new notification: %s/#/inbox\n", url);
    }
    if (footer_link)
        fprintf(fb, zh ? "\n-- \nqun · 所有通知：%s%s\n" : "\n-- \nqun · all your notifications: %s%s\n", url,
                strcmp(footer_link, "/#/me") == 0 ? "/#/me" : "/#/inbox");
    bool ok = !ferror(fs) && !ferror(fb);
    fclose(fs);
    fclose(fb);
    if (!ok) {
        free(s);
        free(b);
        return false;
    }
    *subject = s;
    *body = b;
    return true;
}
