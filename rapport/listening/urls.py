from django.urls import include, path

from rapport.listening import views

urlpatterns = [
    # The intelligence settings page rides along here rather than in the shared web/urls.py.
    path("", include("rapport.intelligence.urls")),
    path("listening/", views.dashboard_view, name="listening-dashboard"),
    path("listening/mentions/", views.mention_list_view, name="listening-mentions"),
    path("listening/mentions.csv", views.mention_export_view, name="listening-mentions-csv"),
    path("listening/mentions/<int:mention_id>/", views.mention_detail_view, name="listening-mention"),
    path("listening/mentions/<int:mention_id>/act", views.mention_action_view, name="listening-mention-act"),
    path("listening/queries/", views.query_list_view, name="listening-queries"),
    path("listening/queries/<int:query_id>/", views.query_edit_view, name="listening-query"),
    path("listening/alerts/", views.alert_list_view, name="listening-alerts"),
    path("listening/alerts/<int:alert_id>/", views.alert_detail_view, name="listening-alert"),
    path("listening/alerts/<int:alert_id>/state", views.alert_action_view, name="listening-alert-state"),
    path("listening/rules/", views.rule_list_view, name="listening-rules"),
    path("listening/rules/<int:rule_id>/", views.rule_edit_view, name="listening-rule"),
    path("listening/sources/", views.source_list_view, name="listening-sources"),
    path("listening/sources/<int:source_id>/", views.source_edit_view, name="listening-source"),
    path(
        "listening/sources/<int:source_id>/toggle", views.source_toggle_view, name="listening-source-toggle"
    ),
]
