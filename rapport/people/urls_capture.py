from django.urls import path

from rapport.people import views_capture as views

urlpatterns = [
    path("quick-add/", views.quick_add_view, name="quick-add"),
    path("quick-add/vcard/", views.vcard_import_view, name="vcard-import"),
    path("people/vcard", views.people_vcard_view, name="people-vcard"),
    path("people/<int:pk>/vcard", views.person_vcard_view, name="person-vcard"),
    path("people/<int:pk>/duplicates/", views.person_duplicates_view, name="person-duplicates"),
    path("duplicates/", views.duplicates_view, name="duplicates"),
    path("duplicates/dismiss/", views.duplicate_dismiss_view, name="duplicate-dismiss"),
    path("merge/people/<int:a>/<int:b>/", views.merge_people_view, name="merge-people"),
    path("merge/organisations/<int:a>/<int:b>/", views.merge_organisations_view, name="merge-organisations"),
]
